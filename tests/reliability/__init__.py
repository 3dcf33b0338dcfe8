"""Reliability and security tests: bad input, faults, load and a locked-down device."""
