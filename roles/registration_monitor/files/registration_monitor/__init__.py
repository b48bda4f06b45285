"""Registration monitor for the webrtc-genesys gateway."""

__version__ = "0.1.0"
