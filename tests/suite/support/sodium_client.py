"""A client of ductor's direct API, protocol v2, written with libsodium (PyNaCl's bindings):
crypto_kx session keys and one crypto_secretstream_xchacha20poly1305 per direction.

usage: sodium_client.py WS_URL TOKEN
Sends a message and reads its deltas and result, then sends a second message and aborts it
once its text streams. Prints every frame, then one summary line of JSON.
"""

import asyncio
import base64
import json
import sys

import nacl.bindings as b
import nacl.utils
import websockets

MESSAGE = b.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE
REKEY = b.crypto_secretstream_xchacha20poly1305_TAG_REKEY


def compact(obj):
    return json.dumps(obj, separators=(",", ":"))


async def main(url, token):
    secret = nacl.utils.random(32)
    public = b.crypto_scalarmult_base(secret)
    async with websockets.connect(url) as ws:
        await ws.send(compact({"type": "auth", "token": token, "protocol": 2,
                               "e2e_pk": base64.b64encode(public).decode()}))
        ok = json.loads(await ws.recv())
        if ok.get("type") != "auth_ok":
            print(compact({"refused": ok}))
            return 1
        rx, tx = b.crypto_kx_client_session_keys(public, secret, base64.b64decode(ok["e2e_pk"]))
        push = b.crypto_secretstream_xchacha20poly1305_state()
        header = b.crypto_secretstream_xchacha20poly1305_init_push(push, tx)
        pull = b.crypto_secretstream_xchacha20poly1305_state()
        state = {"sent": 0, "pulling": False}

        async def send(obj):
            state["sent"] += 1
            tag = REKEY if state["sent"] % 256 == 0 else MESSAGE
            chunk = b.crypto_secretstream_xchacha20poly1305_push(push, compact(obj).encode(), None, tag)
            if state["sent"] == 1:
                chunk = header + chunk
            await ws.send(base64.b64encode(chunk).decode())

        async def recv():
            raw = base64.b64decode(await ws.recv())
            if not state["pulling"]:
                b.crypto_secretstream_xchacha20poly1305_init_pull(pull, raw[:24], rx)
                raw = raw[24:]
                state["pulling"] = True
            plaintext, _tag = b.crypto_secretstream_xchacha20poly1305_pull(pull, raw, None)
            frame = json.loads(plaintext)
            print("frame " + compact(frame), flush=True)
            return frame

        await send({"type": "message", "text": "hello from libsodium"})
        deltas, result = 0, None
        while result is None:
            frame = await recv()
            if frame["type"] == "text_delta":
                deltas += 1
            elif frame["type"] == "result":
                result = frame
        await send({"type": "message", "text": "a turn to abort"})
        while (await recv())["type"] != "text_delta":
            pass
        await send({"type": "abort"})
        abort_ok, stopped = None, None
        while abort_ok is None or stopped is None:
            frame = await recv()
            if frame["type"] == "abort_ok":
                abort_ok = frame
            elif frame["type"] == "result":
                stopped = frame
        print(compact({"provider": ok.get("active_provider"), "deltas": deltas, "result": result["text"],
                       "killed": abort_ok["killed"], "stopped": stopped.get("stopped", False)}))
        return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1], sys.argv[2])))
