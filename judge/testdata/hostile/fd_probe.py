# Lists the open file descriptors above 2: a submission must see only 0, 1 and 2.
import os

found = []
for fd in range(3, 1024):
    try:
        os.fstat(fd)
        found.append(fd)
    except OSError:
        pass
print(" ".join(map(str, found)) or "none")
