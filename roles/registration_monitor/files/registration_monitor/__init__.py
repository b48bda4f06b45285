"""Registration monitor for the webrtc-genesys gateway.

Follows Asterisk's AMI (contacts, static registrations, calls) and Kamailio's forwarding outcomes,
logs every registration and call event as a JSON line and serves /healthz, /metrics and /state.
"""

__version__ = "0.2.0"
