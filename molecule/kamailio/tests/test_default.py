def test_placeholder(host):
    assert host.socket("tcp://127.0.0.54:8080").is_listening
