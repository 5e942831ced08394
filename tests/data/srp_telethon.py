"""Known-answer vector for tests/srp.rs, made by Telethon's own SRP (telethon.password, Telethon 1.45.0).

Run once:  python3 tests/data/srp_telethon.py
and paste its output into tests/srp.rs (TELETHON_* constants). Nothing runs this in CI.

The DC side (B = k*v + g^b) is computed here with plain Python integers from a fixed b; the client side is
Telethon's compute_check with os.urandom replaced by a fixed a, and its compute_digest for the verifier.
"""
import hashlib

import telethon.password as tp
from telethon.tl import types

P = int.from_bytes(bytes.fromhex(
    "c71caeb9c6b1c9048e6c522f70f13f73980d40238e3e21c14934d037563d930f48198a0aa7c14058229493d22530f4dbfa336f6e0ac925"
    "139543aed44cce7c3720fd51f69458705ac68cd4fe6b6b13abdc9746512969328454f18faf8c595f642477fe96bb2a941d5bcd1d4ac8cc"
    "49880708fa9b378e3c4f3a9060bee67cf9a4a4a695811051907e162753b56b0f6b410dba74d8a84b2a14b3144e0ef1284754fd17ed950d"
    "5965b4b9dd46582db1178d169c6bc465b0d6ff9ca3928fef5b9ae4e418fc15e83ebea0f87fa9ff5eed70050ded2849f47bf959d956850c"
    "e929851f0d8115f635b105ee2e4e15d04b2454bf6f4fadf034b10403119cd8e3b92fcc5b"), "big")
G = 3
SALT1 = bytes(range(1, 41))           # 8 "server" bytes + 32 "client" bytes, as Telegram's are
SALT2 = bytes(range(0xa0, 0xb0))      # 16 bytes
PASSWORD = "correct horse battery staple"
SRP_ID = 0x1122334455667788
A_SECRET = hashlib.sha512(b"srp a").digest() * 4   # 256 bytes
B_SECRET = hashlib.sha512(b"srp b").digest() * 4

algo = types.PasswordKdfAlgoSHA256SHA256PBKDF2HMACSHA512iter100000SHA256ModPow(
    salt1=SALT1, salt2=SALT2, g=G, p=P.to_bytes(256, "big"))
v = int.from_bytes(tp.compute_digest(algo, PASSWORD), "big")
k = int.from_bytes(hashlib.sha256(P.to_bytes(256, "big") + G.to_bytes(256, "big")).digest(), "big")
B = (k * v + pow(G, int.from_bytes(B_SECRET, "big"), P)) % P
request = types.account.Password(
    new_algo=types.PasswordKdfAlgoUnknown(), new_secure_algo=types.SecurePasswordKdfAlgoUnknown(),
    secure_random=b"", current_algo=algo, srp_B=B.to_bytes(256, "big"), srp_id=SRP_ID, has_password=True)
tp.os.urandom = lambda n: A_SECRET[:n]
check = tp.compute_check(request, PASSWORD)
print("x        ", tp.compute_hash(algo, PASSWORD).hex())
print("v        ", v.to_bytes(256, "big").hex())
print("a secret ", A_SECRET.hex())
print("b secret ", B_SECRET.hex())
print("srp_B    ", B.to_bytes(256, "big").hex())
print("A        ", check.A.hex())
print("M1       ", check.M1.hex())
