"""Tools that capture real AMI traffic of Asterisk 22 for the registration monitor's unit tests
(tests/unit/monitor/fixtures). Each script runs on the host and again, flat under /capture,
inside a throwaway container of the gateway image; test_in_image uses them the same way."""
