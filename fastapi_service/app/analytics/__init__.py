"""Internal reports for the Odoo dashboards: questions per day, feedback, top and unanswered questions."""
