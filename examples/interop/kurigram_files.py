"""kurigram's Client uploads a file with `save_file` and downloads it back with `get_file`, at their default settings
(`save_file`: 512 KiB parts, 4 workers on one media session; `get_file`: 1 MiB requests one after the other), against
our test DC (through whatever relay the caller puts in front of it). Run by the throughput measurement of
tests/client_files.rs (`throughput_with_injected_rtt_beside_telethon_and_kurigram`).

kurigram takes a media session's address from `help.getConfig`, which names the DC itself, not the relay in front
of it: the media session is opened first with the relay's address (`get_session(..., server_address, port)`), and
the transfers reuse it. The session starts on our DC as in kurigram_signin.py. test_dc serves an upload as
`inputDocumentFileLocation { id: <the upload's file id> }` (test-dc/src/files.rs).

argv: port, RSA modulus hex, exponent, size in bytes.
Prints `UP <seconds>` and `DOWN <seconds>`; exits non-zero if the bytes differ.
"""
import asyncio
import hashlib
import io
import logging
import os
import sys
import time
import types

import pyrogram
from pyrogram.crypto import rsa
from pyrogram.file_id import FileId, FileType
from pyrogram.raw.core import Bytes
from pyrogram.session import Auth


def fingerprint(n: int, e: int) -> int:
    n_b = n.to_bytes((n.bit_length() + 7) // 8, 'big')
    e_b = e.to_bytes((e.bit_length() + 7) // 8, 'big')
    return int.from_bytes(hashlib.sha1(Bytes(n_b) + Bytes(e_b)).digest()[-8:], 'little', signed=True)


def on_dc(dc_id, port):
    async def load_session(self):
        await self.storage.open()
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


async def main():
    port, n, e, size = int(sys.argv[1]), int(sys.argv[2], 16), int(sys.argv[3]), int(sys.argv[4])
    rsa.server_public_keys[fingerprint(n, e)] = rsa.PublicKey(n, e)
    c = pyrogram.Client('files', api_id=1, api_hash='0123456789abcdef0123456789abcdef', in_memory=True,
                        no_updates=True)
    c.load_session = types.MethodType(on_dc(1, port), c)
    await asyncio.wait_for(c.connect(), 60)
    await c.get_session(1, is_media=True, server_address='127.0.0.1', port=port)
    data = os.urandom(size)

    t = time.monotonic()
    f = await c.save_file(io.BytesIO(data))
    print('UP', time.monotonic() - t, flush=True)

    fid = FileId(file_type=FileType.DOCUMENT, dc_id=1, media_id=f.id, access_hash=0, file_reference=b'')
    t = time.monotonic()
    chunks = [chunk async for chunk in c.get_file(fid, file_size=size)]
    print('DOWN', time.monotonic() - t, flush=True)
    got = b''.join(chunks)
    assert got == data, (len(got), len(data))
    await c.disconnect()


logging.basicConfig(level=logging.WARNING)
asyncio.run(main())
