"""Keys, certificates, CSRs and signatures: the only package (with provision.check) that
imports cryptography. Other layers call these helpers and see our own types."""
