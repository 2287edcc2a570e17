/** @odoo-module **/
// Tours for tests/test_bulk_upload_browser.py: files dropped on a chatbot's documents list and
// kanban become its documents (static/src/js/document_drop.js). The drop is what a browser
// dispatches when files are dragged in from the desktop: dragenter on the view (the dropzone
// appears over it), then dragover and drop on the dropzone, with one DataTransfer holding File
// objects.
import { registry } from "@web/core/registry";

const SLOW = 60000; // each step's wait (uploads on a loaded machine)
const DROPZONE = ".o-Dropzone.o_chatbot_document_dropzone";
// the action's own views (the chatbot form holds a list of its documents too)
const LIST = ".o_action_manager .o_view_controller.o_list_view";
const KANBAN = ".o_action_manager .o_view_controller.o_kanban_view";

let dataTransfer = null;

function dragFilesOver(view, files) {
    dataTransfer = new DataTransfer();
    for (const [name, text] of files) {
        dataTransfer.items.add(new File([text], name, { type: "text/plain" }));
    }
    const target = document.querySelector(view);
    if (!target) {
        throw new Error(`no ${view} to drag the files over`);
    }
    target.dispatchEvent(new DragEvent("dragenter", { bubbles: true, cancelable: true, dataTransfer }));
}

function dropOn(dropzone) {
    for (const type of ["dragover", "drop"]) {
        dropzone.dispatchEvent(new DragEvent(type, { bubbles: true, cancelable: true, dataTransfer }));
    }
}

function dropSteps(view, files, readyTrigger) {
    return [
        {
            content: `files are dragged over the ${view}`,
            trigger: readyTrigger,
            timeout: SLOW,
            run: () => dragFilesOver(view, files),
        },
        {
            content: "the dropzone covers the view; the files are dropped on it",
            trigger: DROPZONE,
            timeout: SLOW,
            run() {
                dropOn(this.anchor);
            },
        },
    ];
}

registry.category("web_tour.tours").add("chatbot_platform_drop_upload", {
    steps: () => [
        {
            content: "the chatbot's Documents button opens its documents",
            trigger: ".o_form_view button[name=action_view_documents]",
            timeout: SLOW,
            run: "click",
        },
        ...dropSteps(
            LIST,
            [
                ["handbook.md", "# Handbook\nReturns are free."],
                ["returns-copy.txt", "Returns within 30 days."], // the chatbot's returns.txt
                ["faq.txt", "Q: Shipping? A: Free."],
            ],
            LIST + " .o_data_row:contains('returns.txt')"
        ),
        {
            content: "the notification counts what was created and names the duplicate",
            trigger:
                ".o_notification:contains('2 documents created, 1 duplicates skipped'):contains('returns-copy.txt: same content as returns.txt')",
            timeout: SLOW,
        },
        {
            content: "the list is reloaded with the new documents",
            trigger: LIST + " .o_data_row:contains('handbook.md')",
            timeout: SLOW,
        },
        {
            trigger: LIST + " .o_data_row:contains('faq.txt')",
            timeout: SLOW,
        },
        {
            content: "to the kanban view",
            trigger: ".o_switch_view.o_kanban",
            timeout: SLOW,
            run: "click",
        },
        ...dropSteps(
            KANBAN,
            [
                ["pricing.csv", "plan,price\nbasic,10\n"],
                ["handbook-again.md", "# Handbook\nReturns are free."], // dropped on the list before
            ],
            KANBAN + " .o_kanban_record:contains('faq.txt')"
        ),
        {
            content: "the kanban's drop is counted, its duplicate named",
            trigger:
                ".o_notification:contains('1 documents created, 1 duplicates skipped'):contains('handbook-again.md: same content as handbook.md')",
            timeout: SLOW,
        },
        {
            content: "the kanban is reloaded with the new document",
            trigger: KANBAN + " .o_kanban_record:contains('pricing.csv')",
            timeout: SLOW,
        },
    ],
});

registry.category("web_tour.tours").add("chatbot_platform_drop_no_chatbot", {
    steps: () => [
        ...dropSteps(
            LIST,
            [["orphan.txt", "Whose is it?"]],
            LIST + " .o_data_row:contains('returns.txt')"
        ),
        {
            content: "with no single chatbot known, the user is told where to drop the files",
            trigger: ".o_notification:contains('Which chatbot?'):contains('Upload files')",
            timeout: SLOW,
        },
    ],
});
