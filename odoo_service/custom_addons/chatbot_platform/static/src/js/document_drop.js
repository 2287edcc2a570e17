/** @odoo-module **/
// Bulk upload by drag and drop: files dropped on the documents list or kanban of one chatbot
// become its documents. The browser stages each file as an attachment of the chatbot (one
// request per file, so a large drop never meets the server's request size limit), then one call
// applies the rule the upload wizard applies too (chatbot.document._create_from_uploads: one
// transaction, the file limit, duplicates by SHA-256). Views: js_class="chatbot_document_list" /
// "chatbot_document_kanban" (views/chatbot_document_views.xml).
import { _t } from "@web/core/l10n/translation";
import { registry } from "@web/core/registry";
import { useDropzone } from "@web/core/dropzone/dropzone_hook";
import { useService } from "@web/core/utils/hooks";
import { getDataURLFromFile } from "@web/core/utils/urls";
import { kanbanView } from "@web/views/kanban/kanban_view";
import { KanbanController } from "@web/views/kanban/kanban_controller";
import { listView } from "@web/views/list/list_view";
import { ListController } from "@web/views/list/list_controller";

const DOCUMENT = "chatbot.document";

/**
 * The chatbot these documents belong to: the action's default (the chatbot's Documents button),
 * else a domain that names exactly one chatbot and nothing but conditions joined by "and".
 */
export function chatbotOfView({ context, domain }) {
    if (Number.isInteger(context.default_chatbot_id)) {
        return context.default_chatbot_id;
    }
    if (domain.some((term) => term === "|" || term === "!")) {
        return false;
    }
    const ids = new Set(
        domain
            .filter((t) => Array.isArray(t) && t[0] === "chatbot_id" && t[1] === "=" && Number.isInteger(t[2]))
            .map((t) => t[2])
    );
    return ids.size === 1 ? [...ids][0] : false;
}

function useDocumentDrop(controller) {
    const orm = useService("orm");
    const notification = useService("notification");
    const ui = useService("ui");

    async function upload(chatbotId, files) {
        // refused at once (rights on the chatbot, too many files), before any file is sent
        await orm.call(DOCUMENT, "check_bulk_upload", [chatbotId, files.length]);
        const staged = [];
        try {
            for (const file of files) {
                const data = (await getDataURLFromFile(file)).split(",")[1];
                const [id] = await orm.create("ir.attachment", [
                    { name: file.name, datas: data, res_model: "chatbot.chatbot", res_id: chatbotId },
                ]);
                staged.push(id);
            }
            return await orm.call(DOCUMENT, "upload_dropped_files", [chatbotId, staged]);
        } catch (error) {
            // the upload wrote nothing; its staged copies go too
            if (staged.length) {
                await orm.unlink("ir.attachment", staged);
            }
            throw error;
        }
    }

    async function onDrop(ev) {
        const files = [...(ev.dataTransfer?.files || [])];
        if (!files.length) {
            return;
        }
        const chatbotId = chatbotOfView(controller.props);
        if (!chatbotId) {
            notification.add(
                _t(
                    "These documents are not those of one chatbot. Open the chatbot, then its Documents, and drop the files there, or use Upload files to choose the chatbot."
                ),
                { type: "warning", title: _t("Which chatbot?") }
            );
            return;
        }
        ui.block();
        let result;
        try {
            result = await upload(chatbotId, files);
        } finally {
            ui.unblock();
        }
        notification.add(result.message, {
            type: result.duplicates.length ? "warning" : "success",
            title: _t("Documents uploaded"),
        });
        await controller.model.load();
    }

    useDropzone(controller.rootRef, onDrop, "o_chatbot_document_dropzone");
}

export class ChatbotDocumentListController extends ListController {
    setup() {
        super.setup();
        useDocumentDrop(this);
    }
}

export class ChatbotDocumentKanbanController extends KanbanController {
    setup() {
        super.setup();
        useDocumentDrop(this);
    }
}

registry.category("views").add("chatbot_document_list", {
    ...listView,
    Controller: ChatbotDocumentListController,
});

registry.category("views").add("chatbot_document_kanban", {
    ...kanbanView,
    Controller: ChatbotDocumentKanbanController,
});
