"""Proof that credentials work: a real mutual-TLS handshake (Python's ssl module).

report.py   the HandshakeReport a handshake produces, and the named failures (wire numbers)
material.py credential bytes → ssl contexts (private temp files for what ssl only reads from files)
client.py   the client side: connect, handshake, learn whether the server accepted us
server.py   the test server: requires and verifies client certificates, greets each client
"""
