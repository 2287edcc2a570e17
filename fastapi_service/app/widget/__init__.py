"""The embeddable widget (`/widget.js`), its configuration endpoint and a demo page."""
