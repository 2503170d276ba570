"""What the Python sides of the interoperation tests share: logging, params.txt, MD5."""
import hashlib
import time


def say(role, text):
    print(f"{role}@{time.time():.6f}: {text}", flush=True)


def read_params(path):
    """NAME=value lines, # comments; PERMISSIONS is octal."""
    params = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            name, value = (part.strip() for part in line.split("=", 1))
            params[name.upper()] = int(value, 8 if name.upper() == "PERMISSIONS" else 10)
    return params


def md5(text):
    """The lowercase hex MD5 of bytes, as bytes."""
    return hashlib.md5(text).hexdigest().encode()
