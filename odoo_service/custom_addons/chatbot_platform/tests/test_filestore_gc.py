import base64
import hashlib
import os
import threading
import time

from odoo import SUPERUSER_ID, api, sql_db
from odoo.tests import TransactionCase, tagged

from .common import PDF_BYTES, ChatbotCase

LOCK_WAIT_SECONDS = 60


@tagged("post_install", "-at_install")
class TestFilestoreGcRace(TransactionCase):
    """A document's file survives Odoo's filestore garbage collector running during its save.

    The race (odoo/odoo#224833): ir.attachment writes the file and its GC checklist entry, then
    inserts its row; a GC holding `LOCK ir_attachment IN SHARE MODE` in between sees a checklist entry
    without a row and deletes the file. Both sides here are real PostgreSQL connections: the save runs
    in a thread on its own connection while this test plays the GC on another.
    """

    def test_a_gc_run_during_the_save_keeps_the_file(self):
        dbname = self.env.cr.dbname
        unique = b"%PDF-1.4\n% gc race " + str(time.time_ns()).encode() + b"\n%%EOF\n"
        registry = self.env.registry  # passed on: the thread must not wait for the registry's lock
        gc_cr = sql_db.db_connect(dbname).cursor()
        gc_cr.execute("SET lock_timeout TO '%ss'" % LOCK_WAIT_SECONDS)
        gc_cr.execute("LOCK ir_attachment IN SHARE MODE")  # what _gc_file_store takes first
        outcome = {}

        def save_document():
            with sql_db.db_connect(dbname).cursor() as cr:
                cr.execute("SET lock_timeout TO '%ss'" % LOCK_WAIT_SECONDS)
                cr.transaction = api.Transaction(registry)
                env = api.Environment(cr, SUPERUSER_ID, {})
                try:
                    bot = env["chatbot.chatbot"].create({"name": "GC race bot"})
                    doc = env["chatbot.document"].create(
                        {"chatbot_id": bot.id, "filename": "race.pdf", "datas": base64.b64encode(unique)}
                    )
                    env.flush_all()
                    attachment = env["ir.attachment"].search(
                        [("res_model", "=", "chatbot.document"), ("res_id", "=", doc.id), ("res_field", "=", "datas")]
                    )
                    path = attachment._full_path(attachment.store_fname)
                    env.invalidate_all()
                    outcome.update(exists=os.path.isfile(path), raw=doc._raw_content())
                except Exception as exc:  # reported by the test thread below
                    outcome["error"] = exc
                finally:
                    cr.rollback()  # nothing of this test stays in the database

        saver = threading.Thread(target=save_document)
        saver.start()

        def release():
            gc_cr.rollback()  # a no-op once the GC below committed; else it frees the waiting save
            gc_cr.close()
            saver.join(LOCK_WAIT_SECONDS)

        self.addCleanup(release)
        # wait until the save is queued behind the GC's lock (it must not have written its file yet)
        deadline = time.monotonic() + LOCK_WAIT_SECONDS
        with sql_db.db_connect(dbname).cursor() as probe:
            while True:
                probe.execute(
                    "SELECT count(*) FROM pg_locks WHERE relation = 'ir_attachment'::regclass AND NOT granted"
                )
                if probe.fetchone()[0]:
                    break
                self.assertTrue(saver.is_alive(), "the save finished without waiting for the GC's lock")
                self.assertLess(time.monotonic(), deadline, "the save never reached the attachment table")
                time.sleep(0.05)
                probe.rollback()
        gc_cr.transaction = api.Transaction(registry)
        api.Environment(gc_cr, SUPERUSER_ID, {})["ir.attachment"]._gc_file_store_unsafe()
        gc_cr.commit()  # releases the lock, as _gc_file_store does
        saver.join(LOCK_WAIT_SECONDS)
        self.assertFalse(saver.is_alive())
        if "error" in outcome:
            raise outcome["error"]
        self.assertTrue(outcome["exists"], "the GC deleted the file of the document being saved")
        self.assertEqual(hashlib.sha256(outcome["raw"]).hexdigest(), hashlib.sha256(unique).hexdigest())


@tagged("post_install", "-at_install")
class TestLostFile(ChatbotCase):
    def test_a_document_whose_file_is_gone_fails_with_the_reason_and_is_not_sent(self):
        bot = self.create_chatbot()
        self.run_postcommit()
        unique = PDF_BYTES + b"% lost " + str(time.time_ns()).encode() + b"\n"
        doc = self.create_document(bot, content=unique)
        attachment = self.env["ir.attachment"].search(
            [("res_model", "=", "chatbot.document"), ("res_id", "=", doc.id), ("res_field", "=", "datas")]
        )
        os.unlink(attachment._full_path(attachment.store_fname))
        self.env.invalidate_all()
        self.engine.clear()
        self.run_postcommit()
        self.assertFalse(
            [r for r in self.engine.requests if r["path"].endswith(doc.uuid)], "a wrong document is never sent"
        )
        row = self.rows(doc)
        self.assertEqual(row.state, "failed", "no retry brings the file back")
        self.assertEqual(doc.sync_state, "failed")
        self.assertIn("upload the file again", doc.sync_error)
        self.assertIn(hashlib.sha256(unique).hexdigest(), doc.sync_error)
        self.assertTrue(doc.sync_error.startswith("not sent:"), doc.sync_error)
