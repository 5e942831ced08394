"""Telethon's update handling against test_dc's update stream (test-dc/src/updates.rs). Run by
tests/interop_telethon.rs (`telethon_updates_catch_up`) in two phases, with the same SQLite session file:

- `login`: signs in as +9996611111 (DC 1, code 11111; the test DC signs the number up), lets Telethon's update loop
  read the account's state (`updates.getState`), prints `ID <user id>` and disconnects (Telethon saves the state).
- `catchup`: while it was away, another user sent it messages (more than one `updates.differenceSlice`);
  Telethon reconnects with `catch_up=True` and fetches them with its own `updates.getDifference`. Prints one
  `MSG <id> <sender> <text>` line per `events.NewMessage`, in the order delivered (`sequential_updates`), then
  `STATE <pts> <seq>` of Telethon's message box.

argv: DC port, RSA modulus hex, exponent, phase, session file.
"""
import asyncio
import logging
import sys

import rsa as pyrsa
from telethon import TelegramClient, events, functions
from telethon.crypto import rsa

PHONE = '+9996611111'
CODE = '11111'


def client(path, port, **kw):
    TelegramClient._config = None
    c = TelegramClient(path, api_id=1, api_hash='0123456789abcdef0123456789abcdef', connection_retries=1,
                       retry_delay=0, request_retries=3, timeout=20, **kw)
    c.session.set_dc(1, '127.0.0.1', port)
    return c


async def login(path, port):
    c = client(path, port)
    await asyncio.wait_for(c.start(phone=PHONE, code_callback=lambda: CODE), 60)
    me = await c.get_me()
    # The update loop asks updates.getState once signed in; wait until the message box has it.
    for _ in range(100):
        if not c._message_box.is_empty():
            break
        await asyncio.sleep(0.05)
    assert not c._message_box.is_empty(), 'Telethon never read the update state'
    print('ID', me.id, flush=True)
    await c.disconnect()


async def catchup(path, port):
    c = client(path, port, catch_up=True, sequential_updates=True)
    got = []
    last = [asyncio.get_running_loop().time()]

    @c.on(events.NewMessage(incoming=True))
    async def on_message(event):
        got.append((event.message.id, event.message.sender_id, event.message.message))
        last[0] = asyncio.get_running_loop().time()

    await asyncio.wait_for(c.connect(), 60)
    assert await c.is_user_authorized()
    loop = asyncio.get_running_loop()
    start = loop.time()
    # Until nothing came for 1.5 s (20 s at most).
    while loop.time() - max(last[0], start) < 1.5 and loop.time() - start < 20:
        await asyncio.sleep(0.1)
    for mid, sender, text in got:
        print('MSG', mid, sender, text, flush=True)
    st, _channels = c._message_box.session_state()
    print('STATE', st['pts'], st['seq'], flush=True)
    await c.disconnect()


async def main():
    port = int(sys.argv[1])
    rsa.add_key(pyrsa.PublicKey(int(sys.argv[2], 16), int(sys.argv[3])).save_pkcs1(), old=False)
    phase, path = sys.argv[4], sys.argv[5]
    await (login if phase == 'login' else catchup)(path, port)


logging.basicConfig(level=logging.WARNING)
asyncio.run(main())
