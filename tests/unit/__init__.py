"""Unit tests: the roles' templates rendered offline, checked as text and by the daemons themselves."""
