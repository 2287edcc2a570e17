"""A visitor asks for a human: the session is marked and Odoo is told, with the transcript."""
