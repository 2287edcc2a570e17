"""Wire shape of /v1/widget/config."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class WidgetConfig(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "Support bot",
                    "title": "Acme help",
                    "color": "#112233",
                    "welcome": "Hello! Ask me about our products.",
                    "suggestions": ["How do returns work?"],
                    "language": "en",
                    "handoff": True,
                }
            ]
        }
    )

    name: str
    title: str
    color: str
    welcome: str
    suggestions: list[str]
    language: str
    handoff: bool  # the chatbot offers a person: the widget shows its "talk to a person" button
