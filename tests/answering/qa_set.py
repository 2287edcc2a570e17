"""A question/answer set over three real documents made here: a PDF with running headers and
footers (fpdf2), a DOCX with headings and a table (python-docx) and an HTML page.

Each answerable question has the fact that a correct answer must contain (compared case- and
space-insensitively); the unanswerable ones are on the documents' topics but answered nowhere in
them, so the right answer is "I don't know". Used by tests/answering/test_extractive.py and
bench/extractive_qa.py, which ingest the documents through the engine's real pipeline.
"""

from __future__ import annotations

import base64
import hashlib
import io
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

PDF_TITLE = "Harbourview Business Centre - Tenant Handbook 2026"
PDF_PAGES = [
    [
        (
            "Welcome",
            "This handbook explains how the Harbourview Business Centre works day to day. It applies to every "
            "tenant of the centre, their staff and their visitors. The building management office is on the "
            "ground floor next to the main lobby and is staffed on working days. Please keep a copy of this "
            "handbook at your reception desk and share it with new employees during their first week.",
        ),
        (
            "Access and opening hours",
            "The main entrance is open from 7:00 to 20:00 on weekdays and from 9:00 to 14:00 on Saturdays. "
            "Outside these hours tenants enter with their access badge through the side door on Quay Street. "
            "Lost badges must be reported to the management office, and a replacement badge costs 25 euros. "
            "Visitors sign in at the lobby desk and wear a visitor pass while they are in the building.",
        ),
        (
            "Parking",
            "The underground car park is shared by all tenants, and each tenant is allocated spaces in "
            "proportion to the floor area it rents. No more than 60 vehicles may be parked in the car park at "
            "any time. Electric vehicles can be charged at the eight charging points on level -1. "
            "The car park height limit is 2.1 metres, so vans with roof racks should use the street.",
        ),
    ],
    [
        (
            "Deliveries",
            "Deliveries are accepted at the loading bay at the rear of the building between 8:00 and 16:00. "
            "Couriers must not use the passenger lifts; the goods lift next to the loading bay carries up to "
            "1,500 kg. Parcels that arrive outside these hours are kept at the lobby desk for collection. "
            "Large furniture deliveries must be booked with the management office two working days ahead.",
        ),
        (
            "Waste and recycling",
            "Each floor has separate bins for paper, plastics, glass and general waste. Cleaners empty the "
            "bins every evening after 18:00. Cardboard boxes must be flattened and left in the recycling room "
            "behind the loading bay. Electronic waste such as old monitors is collected on the first Monday of "
            "every month; label it with your company name.",
        ),
    ],
    [
        (
            "Fire safety",
            "The fire alarm is tested every Tuesday at 10:30; the test lasts less than one minute and no action "
            "is needed. In a real alarm, leave by the nearest staircase and do not use the lifts. The assembly "
            "point is the car park of the marina, across Quay Street. Each tenant names one fire warden for "
            "every 20 employees and sends their names to the management office.",
        ),
        (
            "Meeting rooms",
            "Tenants may book the two shared meeting rooms on the fourth floor through the tenant portal. A "
            "booking can last at most four hours, and rooms can be booked up to 30 days in advance. Each room "
            "seats twelve people and has a screen and a video-conferencing camera. Cancel a booking you no "
            "longer need so that other tenants can use the room.",
        ),
    ],
    [
        (
            "Internet and network",
            "Every office has wired network ports connected to the building's fibre line. The guest Wi-Fi "
            "network is called Harbourview-Guest and its password changes on the first day of every month. "
            "Tenants who need a dedicated line order it through the management office, which coordinates the "
            "installation with the provider.",
        ),
        (
            "Heating and quiet hours",
            "The heating season runs from 15 October to 15 April, and offices are kept between 20 and 23 "
            "degrees Celsius. Noisy work such as drilling is only allowed before 8:00 or after 18:00 on "
            "weekdays so that other tenants are not disturbed. Pets are not allowed in the building, with the "
            "exception of assistance dogs.",
        ),
    ],
]

DOCX_TITLE = "Nimbus X2 Robot Vacuum - User Manual"
DOCX_SECTIONS = {
    "Before first use": (
        "Remove all packaging and the protective film from the bumper. Place the charging dock against a wall "
        "on a hard, level floor with half a metre of free space on each side and one and a half metres in "
        "front of it.\n\nDownload the Nimbus Home app and follow the steps in the app to connect the vacuum to "
        "your home Wi-Fi network. The Nimbus X2 only connects to 2.4 GHz Wi-Fi networks."
    ),
    "Charging": (
        "Put the vacuum on its dock to charge it. A full charge takes about five hours from an empty battery. "
        "On a full battery the Nimbus X2 cleans for up to 150 minutes in quiet mode.\n\nWhen the battery falls "
        "below 15 percent the vacuum returns to its dock on its own and resumes cleaning once it has recharged."
    ),
    "Cleaning modes": (
        "Auto mode cleans the whole floor room by room. Spot mode cleans a square of 1.5 by 1.5 metres around "
        "the vacuum, which is useful after a spill.\n\nEdge mode follows walls and skirting boards. You can "
        "start every mode with the buttons on the vacuum or from the app, and schedule cleanings in the app."
    ),
    "Maintenance": (
        "Empty the dust bin after every cleaning; it holds 0.6 litres. Rinse the filter with cold water once a "
        "week and let it dry for 24 hours before you put it back.\n\nReplace the side brush every three to six "
        "months and the main brush every six to twelve months, depending on how often you clean."
    ),
    "Troubleshooting": (
        "If the vacuum does not connect to the app, restart your router and hold the Wi-Fi button for five "
        "seconds until the light flashes blue. A red light on the bumper means that a wheel is stuck; lift the "
        "vacuum and remove hair or threads from the wheels.\n\nTo reset the vacuum to factory settings, hold "
        "the power button and the home button together for ten seconds."
    ),
    "Warranty": (
        "The Nimbus X2 carries a two-year limited warranty from the date of purchase. The battery is covered "
        "for one year.\n\nThe warranty does not cover damage caused by liquids, and brushes and filters are "
        "wear parts that it does not cover either. Keep your receipt as proof of purchase."
    ),
}
DOCX_TABLE = [
    ["Specification", "Value"],
    ["Weight", "3.4 kg"],
    ["Height", "9.5 cm"],
    ["Noise in quiet mode", "58 dB"],
]

HTML_TITLE = "Brightwave Telecom - Billing and Plans FAQ"
HTML_SECTIONS = [
    (
        "When is my bill issued?",
        "Brightwave issues bills on the 3rd of every month, for the month that has just ended. You get an e-mail "
        "as soon as the bill is available in your account. Payment is due 14 days after the bill is issued.",
    ),
    (
        "How can I pay?",
        "You can pay by direct debit, by credit card in your online account, or by bank transfer. Customers who "
        "pay by direct debit get a discount of 2 euros per month. We do not accept cheques.",
    ),
    (
        "What happens if I pay late?",
        "If a bill is unpaid 14 days after its due date, we send a reminder and add a late payment fee of 5 "
        "euros. If it is still unpaid after 30 more days, outgoing calls are suspended until the bill is paid.",
    ),
    (
        "Does unused data roll over?",
        "Yes. Unused data from your monthly allowance rolls over to the next month, but only for one month; "
        "data that rolled over is used first. Rolled-over data cannot be transferred to another line.",
    ),
    (
        "Can I use my phone abroad?",
        "Roaming in the European Union is included in every plan at no extra cost, under the fair use policy. "
        "Outside the EU, calls cost 1.20 euros per minute and data costs 5 euros per 100 MB. You can switch off "
        "roaming outside the EU in your account to avoid charges.",
    ),
    (
        "How do I cancel my contract?",
        "You can cancel your contract at any time after the first 12 months with a notice period of 30 days. "
        "Cancelling during the first 12 months costs a fee equal to the remaining months' subscription. Send "
        "your request through your online account or call customer service.",
    ),
    (
        "How do I reach customer service?",
        "Our customer service team answers calls from 8:00 to 22:00 every day, including weekends. You can also "
        "chat with us in the app. Business customers have a dedicated line with a response time of one hour.",
    ),
]


@dataclass(frozen=True)
class Question:
    question: str
    fact: str | None  # None: the documents do not answer it


QUESTIONS = [
    Question("How many vehicles can be parked in the car park?", "No more than 60 vehicles"),
    Question("When is the main entrance open on Saturdays?", "9:00 to 14:00 on Saturdays"),
    Question("How much does a replacement access badge cost?", "25 euros"),
    Question("Where can I charge my electric car?", "eight charging points on level -1"),
    Question("What is the height limit of the car park?", "2.1 metres"),
    Question("What are the delivery hours at the loading bay?", "between 8:00 and 16:00"),
    Question("How much weight can the goods lift carry?", "1,500 kg"),
    Question("When is electronic waste collected?", "first Monday of every month"),
    Question("When is the fire alarm tested?", "every Tuesday at 10:30"),
    Question("Where is the fire assembly point?", "car park of the marina"),
    Question("How long can a meeting room be booked for?", "at most four hours"),
    Question("What is the name of the guest Wi-Fi network?", "Harbourview-Guest"),
    Question("When does the heating season start?", "15 October"),
    Question("Are dogs allowed in the building?", "Pets are not allowed in the building"),
    Question("How long does it take to fully charge the robot vacuum?", "about five hours"),
    Question("How long can the Nimbus X2 clean on one charge?", "150 minutes"),
    Question("Which Wi-Fi networks does the vacuum support?", "2.4 GHz"),
    Question("How often should I rinse the vacuum's filter?", "once a week"),
    Question("What does a red light on the bumper mean?", "a wheel is stuck"),
    Question("How do I reset the vacuum to factory settings?", "for ten seconds"),
    Question("How long is the battery covered by the warranty?", "battery is covered for one year"),
    Question("How much does the Nimbus X2 weigh?", "3.4 kg"),
    Question("What is the late payment fee?", "5 euros"),
    Question("What discount do I get for paying by direct debit?", "2 euros per month"),
    Question("How much do calls cost outside the EU?", "1.20 euros per minute"),
    Question("What is the notice period to cancel my contract?", "notice period of 30 days"),
    Question("What are customer service's opening hours?", "8:00 to 22:00 every day"),
    Question("When are bills issued?", "3rd of every month"),
]

UNANSWERABLE = [
    Question("What is the monthly rent for an office in the business centre?", None),
    Question("Who is the architect of the Harbourview building?", None),
    Question("Does the robot vacuum work with Amazon Alexa?", None),
    Question("What colour is the Nimbus X2?", None),
    Question("How much does the unlimited data plan cost?", None),
    Question("Does Brightwave offer fibre broadband at home?", None),
    Question("What is the boiling point of liquid nitrogen?", None),
    Question("Who won the football world cup in 1998?", None),
    Question("How do I bake sourdough bread?", None),
    Question("What is the capital city of Australia?", None),
]


def handbook_pdf() -> bytes:
    """Four pages, each with the handbook's running header and a "Page n of 4" footer."""
    from fpdf import FPDF

    class Handbook(FPDF):
        def header(self) -> None:
            self.set_font("helvetica", size=8)
            self.cell(0, 6, "Harbourview Business Centre - Tenant Handbook 2026", new_x="LMARGIN", new_y="NEXT")
            self.ln(4)

        def footer(self) -> None:
            self.set_y(-15)
            self.set_font("helvetica", size=8)
            self.cell(0, 6, f"Page {self.page_no()} of {{nb}}  -  Confidential, for tenants only", align="C")

    doc = Handbook()
    doc.set_title(PDF_TITLE)
    for sections in PDF_PAGES:
        doc.add_page()
        for heading, body in sections:
            doc.set_font("helvetica", style="B", size=13)
            doc.multi_cell(0, 7, heading, new_x="LMARGIN", new_y="NEXT")
            doc.set_font("helvetica", size=11)
            doc.multi_cell(0, 6, body, new_x="LMARGIN", new_y="NEXT")
            doc.ln(3)
    return bytes(doc.output())


def manual_docx() -> bytes:
    import docx

    document = docx.Document()
    document.add_heading(DOCX_TITLE, level=0)
    for heading, body in DOCX_SECTIONS.items():
        document.add_heading(heading, level=1)
        for paragraph in body.split("\n\n"):
            document.add_paragraph(paragraph)
    document.add_heading("Specifications", level=1)
    grid = document.add_table(rows=len(DOCX_TABLE), cols=2)
    for r, row in enumerate(DOCX_TABLE):
        for c, value in enumerate(row):
            grid.cell(r, c).text = value
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def faq_html() -> bytes:
    body = "".join(f"<h2>{q}</h2><p>{a}</p>" for q, a in HTML_SECTIONS)
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{HTML_TITLE}</title></head><body>"
        f"<nav>Home | Plans | Support</nav><main><h1>{HTML_TITLE}</h1>{body}</main>"
        f"<footer>Brightwave Telecom Ltd.</footer></body></html>"
    ).encode()


def documents() -> list[tuple[str, str, bytes]]:
    """(filename, mimetype, bytes) of the three documents."""
    docx_type = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    types_and_data = [("application/pdf", handbook_pdf()), (docx_type, manual_docx()), ("text/html", faq_html())]
    return [(name, mimetype, data) for name, (mimetype, data) in zip(FILENAMES, types_and_data, strict=True)]


def document_payload(filename: str, mimetype: str, data: bytes) -> dict[str, Any]:
    return {
        "version": 1,
        "kind": "document",
        "name": filename,
        "document": {
            "filename": filename,
            "mimetype": mimetype,
            "sha256": hashlib.sha256(data).hexdigest(),
            "content_base64": base64.b64encode(data).decode(),
        },
    }


def normalised(text: str) -> str:
    return " ".join(text.lower().split())


def contains_fact(answer: str, fact: str) -> bool:
    return normalised(fact) in normalised(answer)


@dataclass
class Report:
    answered_right: list[str] = field(default_factory=list)
    missed: list[tuple[str, str]] = field(default_factory=list)  # (question, answer)
    declined_right: list[str] = field(default_factory=list)
    answered_wrongly: list[tuple[str, str]] = field(default_factory=list)

    @property
    def fact_share(self) -> float:
        return len(self.answered_right) / max(1, len(self.answered_right) + len(self.missed))

    @property
    def decline_share(self) -> float:
        return len(self.declined_right) / max(1, len(self.declined_right) + len(self.answered_wrongly))


Ask = Callable[[str], Awaitable[httpx.Response]]


async def evaluate(ask: Ask, no_answer_message: str) -> Report:
    """Ask every question through `ask` (a POST /v1/chat) and sort the answers."""
    report = Report()
    for q in QUESTIONS + UNANSWERABLE:
        response = await ask(q.question)
        assert response.status_code == 200, response.text
        answer = response.json()["answer"]
        declined = answer == no_answer_message
        if q.fact is not None:
            if contains_fact(answer, q.fact):
                report.answered_right.append(q.question)
            else:
                report.missed.append((q.question, answer))
        elif declined:
            report.declined_right.append(q.question)
        else:
            report.answered_wrongly.append((q.question, answer))
    return report


FILENAMES = ("tenant-handbook.pdf", "nimbus-x2-manual.docx", "billing-faq.html")


def source_ids(chatbot: uuid.UUID) -> list[uuid.UUID]:
    """The ids of the documents' sources in `chatbot`, in the order of `documents()`."""
    return [uuid.uuid5(chatbot, name) for name in FILENAMES]
