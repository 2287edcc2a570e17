"""Untrusted bytes -> text blocks: format sniffing, charsets, parsers, run in a sandbox process."""
