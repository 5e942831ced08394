"""Telethon's update handling against test_dc's update stream (test-dc/src/updates.rs). Run by
tests/interop_telethon.rs (`telethon_updates_catch_up`) in two phases, with the same SQLite session file:

- `login`: signs in as +9996611111 (DC 1, code 11111; the test DC signs the number up), lets Telethon's update loop
  read the account's state (`updates.getState`), writes one message to test_dc's megagroup (so that its message
  box tracks the channel's pts, as it does for a channel the account has seen), prints `ID <user id>` and
  disconnects (Telethon saves the account's and the channel's state).
- `catchup`: while it was away, another user sent it messages (more than one `updates.differenceSlice`) and wrote
  in the megagroup; Telethon reconnects with `catch_up=True` and fetches them with its own `updates.getDifference`
  and, on the `updateChannelTooLong` that difference carries, `updates.getChannelDifference`. Prints one
  `MSG <id> <sender> <text>` line per private `events.NewMessage` and one `CMSG <id> <sender> <text>` line per
  megagroup message, in the order delivered (`sequential_updates`), then `STATE <pts> <seq>` of Telethon's message
  box and `CSTATE <pts>` of its channel entry.

argv: DC port, RSA modulus hex, exponent, phase, session file.
"""
import asyncio
import logging
import sys

import rsa as pyrsa
from telethon import TelegramClient, events, functions, types
from telethon.crypto import rsa

PHONE = '+9996611111'
CODE = '11111'
# test_dc's megagroup (test-dc/src/updates.rs CHANNEL_ID, CHANNEL_ACCESS_HASH).
CHANNEL_ID = 1_777_000_001
CHANNEL_ACCESS_HASH = 0x7e57_dc0c_4a77_0001


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
    # Its own message to the megagroup: the answer's updateNewChannelMessage gives the message box the channel.
    await c(functions.messages.SendMessageRequest(
        peer=types.InputPeerChannel(CHANNEL_ID, CHANNEL_ACCESS_HASH), message='login', random_id=1))
    for _ in range(100):
        if CHANNEL_ID in c._message_box.map:
            break
        await asyncio.sleep(0.05)
    assert CHANNEL_ID in c._message_box.map, 'Telethon never tracked the channel'
    print('ID', me.id, flush=True)
    await c.disconnect()


async def catchup(path, port):
    c = client(path, port, catch_up=True, sequential_updates=True)
    got = []
    last = [asyncio.get_running_loop().time()]

    @c.on(events.NewMessage(incoming=True))
    async def on_message(event):
        kind = 'CMSG' if event.is_channel else 'MSG'
        got.append((kind, event.message.id, event.message.sender_id, event.message.message))
        last[0] = asyncio.get_running_loop().time()

    await asyncio.wait_for(c.connect(), 60)
    assert await c.is_user_authorized()
    loop = asyncio.get_running_loop()
    start = loop.time()
    # Until nothing came for 1.5 s (20 s at most).
    while loop.time() - max(last[0], start) < 1.5 and loop.time() - start < 20:
        await asyncio.sleep(0.1)
    for kind, mid, sender, text in got:
        print(kind, mid, sender, text, flush=True)
    st, channels = c._message_box.session_state()
    print('STATE', st['pts'], st['seq'], flush=True)
    if CHANNEL_ID in channels:
        print('CSTATE', channels[CHANNEL_ID], flush=True)
    await c.disconnect()


async def main():
    port = int(sys.argv[1])
    rsa.add_key(pyrsa.PublicKey(int(sys.argv[2], 16), int(sys.argv[3])).save_pkcs1(), old=False)
    phase, path = sys.argv[4], sys.argv[5]
    await (login if phase == 'login' else catchup)(path, port)


logging.basicConfig(level=logging.WARNING)
asyncio.run(main())
