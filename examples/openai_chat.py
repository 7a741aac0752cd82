"""Streams an answer through the official `openai` package (pip install openai).

    python3 examples/openai_chat.py [BASE_URL]      (API_KEY for a keyed server)
"""
import os
import sys

from openai import OpenAI

base_url = (sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8080") + "/v1"
client = OpenAI(base_url=base_url, api_key=os.environ.get("API_KEY", "unused-in-open-mode"))
stream = client.chat.completions.create(
    model=client.models.list().data[0].id,
    messages=[{"role": "user", "content": "Once upon a time"}],
    max_tokens=32,
    stream=True,
)
for chunk in stream:
    if chunk.choices:
        print(chunk.choices[0].delta.content or "", end="", flush=True)
print()
