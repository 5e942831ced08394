"""kurigram's update handling against test_dc's update stream (test-dc/src/updates.rs). Run by
tests/interop_kurigram.rs (`kurigram_updates_catch_up`) in two phases, with the same session file (kurigram's
SQLite storage keeps the update state):

- `login`: `Client.start()` as +9996612222 (DC 1, code 11111; the test DC signs the number up), which reads and stores
  the account's state (`updates.getState`); then writes one message to test_dc's megagroup and hands the answer (an
  `updates` with its `updateNewChannelMessage`) to kurigram's own `Client.handle_updates`, which stores the channel's
  pts as it does for every channel update it receives (kurigram's `invoke` does not pass results through it, and
  its `recover_gaps` fetches only the channels whose state it stored: this is how a kurigram account that was sent
  a megagroup message before going away has it); prints `ID <user id>` and stops.
- `catchup`: while it was away, another user sent it messages (more than one `updates.differenceSlice`) and wrote
  in the megagroup; `Client.start()` with `skip_updates=False` runs kurigram's `recover_gaps`
  (`updates.getDifference` from the stored state, `updates.getChannelDifference` from the channel's). Prints one
  `MSG <id> <sender> <text>` line per private message and one `CMSG ...` line per megagroup message handler call,
  in the order delivered, then `STATE <pts> <seq>` and `CSTATE <pts>` (the megagroup's) as kurigram stored them.

argv: DC port, RSA modulus hex, exponent, phase, working directory.
"""
import asyncio
import hashlib
import logging
import sys
import types

import pyrogram
from pyrogram import raw, utils
from pyrogram.crypto import rsa
from pyrogram.raw.core import Bytes
from pyrogram.session import Auth

PHONE = '+9996612222'
CODE = '11111'
# test_dc's megagroup (test-dc/src/updates.rs CHANNEL_ID, CHANNEL_ACCESS_HASH), and kurigram's id for it.
CHANNEL_ID = 1_777_000_001
CHANNEL_ACCESS_HASH = 0x7e57_dc0c_4a77_0001
CHANNEL_PEER = utils.get_channel_id(CHANNEL_ID)


def fingerprint(n: int, e: int) -> int:
    n_b = n.to_bytes((n.bit_length() + 7) // 8, 'big')
    e_b = e.to_bytes((e.bit_length() + 7) // 8, 'big')
    return int.from_bytes(hashlib.sha1(Bytes(n_b) + Bytes(e_b)).digest()[-8:], 'little', signed=True)


def on_dc(dc_id, port):
    async def load_session(self):
        # Client.load_session for a new session, with our DC in place of Telegram's DC 2 (kurigram_signin.py).
        await self.storage.open()
        if await self.storage.auth_key() is not None:
            return
        await self.storage.api_id(self.api_id)
        await self.storage.dc_id(dc_id)
        await self.storage.server_address('127.0.0.1')
        await self.storage.port(port)
        await self.storage.date(0)
        await self.storage.test_mode(False)
        await self.storage.auth_key(await Auth(self, dc_id, '127.0.0.1', port, False).create())
        await self.storage.user_id(None)
        await self.storage.is_bot(None)
    return load_session


def client(workdir, port, **kw):
    c = pyrogram.Client('updates', api_id=1, api_hash='0123456789abcdef0123456789abcdef', workdir=workdir,
                        phone_number=PHONE, phone_code=CODE, **kw)
    c.load_session = types.MethodType(on_dc(1, port), c)
    return c


async def main():
    port = int(sys.argv[1])
    n, e = int(sys.argv[2], 16), int(sys.argv[3])
    rsa.server_public_keys[fingerprint(n, e)] = rsa.PublicKey(n, e)
    phase, workdir = sys.argv[4], sys.argv[5]
    if phase == 'login':
        c = client(workdir, port, no_updates=True)
        await asyncio.wait_for(c.start(), 60)
        r = await c.invoke(raw.functions.messages.SendMessage(
            peer=raw.types.InputPeerChannel(channel_id=CHANNEL_ID, access_hash=CHANNEL_ACCESS_HASH),
            message='login', random_id=1))
        await c.handle_updates(r)
        st = await c.storage.get_update_states(CHANNEL_PEER)
        assert st and st[0].pts, 'kurigram did not store the megagroup state'
        print('ID', c.me.id, flush=True)
        await c.stop()
        return
    got = []
    loop = asyncio.get_running_loop()
    last = [loop.time()]
    c = client(workdir, port, skip_updates=False, workers=1)

    @c.on_message()
    async def on_message(_client, message):
        sender = message.from_user.id if message.from_user else 0
        kind = 'CMSG' if message.chat and message.chat.id == CHANNEL_PEER else 'MSG'
        got.append((kind, message.id, sender, message.text))
        last[0] = loop.time()

    start = loop.time()
    await asyncio.wait_for(c.start(), 60)
    while loop.time() - max(last[0], start) < 1.5 and loop.time() - start < 20:
        await asyncio.sleep(0.1)
    for kind, mid, sender, text in got:
        print(kind, mid, sender, text, flush=True)
    st = await c.storage.get_update_states(0)
    print('STATE', st[0].pts if st else '?', st[0].seq if st else '?', flush=True)
    st = await c.storage.get_update_states(CHANNEL_PEER)
    if st:
        print('CSTATE', st[0].pts, flush=True)
    await c.stop()


logging.basicConfig(level=logging.WARNING)
asyncio.run(main())
