"""One turn over protocol v1 with the `websockets` package (apt install python3-websockets, or pip).

    python3 examples/ws_chat.py [WS_URL] [MESSAGE]      (API_KEY for a keyed server)
"""
import asyncio
import json
import os
import sys

import websockets


async def main() -> None:
    url = sys.argv[1] if len(sys.argv) > 1 else "ws://127.0.0.1:8080/v1/ws"
    message = sys.argv[2] if len(sys.argv) > 2 else "Once upon a time"
    key = os.environ.get("API_KEY")
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    # websockets 14 renamed extra_headers to additional_headers.
    header_option = "additional_headers" if int(websockets.__version__.split(".")[0]) >= 14 else "extra_headers"
    async with websockets.connect(url, subprotocols=["llm-chat.v1"], **{header_option: headers}) as socket:
        await socket.send(json.dumps({"type": "session.open", "id": "open"}))
        await socket.send(json.dumps({"type": "chat.send", "id": "chat", "sessionId": await opened(socket), "content": message}))
        async for raw in socket:
            frame = json.loads(raw)
            if frame["type"] == "token" and frame["channel"] == "content":
                print(frame["text"], end="", flush=True)
            elif frame["type"] == "generation.done":
                print(f"\n[{frame['finish']}, {frame['usage']['completionTokens']} tokens]")
                return
            elif frame["type"] == "error":
                sys.exit(f"[{frame['code']}] {frame['message']}")


async def opened(socket) -> str:
    """Waits for session.opened (after welcome) and returns its sessionId."""
    async for raw in socket:
        frame = json.loads(raw)
        if frame["type"] == "session.opened":
            return frame["sessionId"]
        if frame["type"] == "error":
            sys.exit(f"[{frame['code']}] {frame['message']}")
    sys.exit("the connection closed before session.opened")


asyncio.run(main())
