-- What the last crawl of a link did: pages indexed and pages skipped (robots.txt, errors, non-HTML,
-- off-site redirects). Reported to Odoo with the link's status; NULL for documents.
ALTER TABLE sources ADD COLUMN IF NOT EXISTS pages_indexed integer;
ALTER TABLE sources ADD COLUMN IF NOT EXISTS pages_skipped integer;
