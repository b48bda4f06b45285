"""Unit tests of the registration monitor, fed with AMI traffic captured from Asterisk 22 (fixtures/)."""
