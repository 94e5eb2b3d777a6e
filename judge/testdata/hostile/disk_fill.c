// Tries to keep files where the box's disk limit might not reach: in /dev (bwrap's /dev is
// a tmpfs of its own) and in /tmp. It reports whether /dev took a file and /dev/null
// still takes writes, then writes files of 8 MiB (under the per-file limit) to /tmp until
// it is full, and goes on spinning: /tmp is the box's own disk, so the program is ended for
// its disk, not left to its CPU or wall-clock limit, nor to the host's memory.
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static char block[1 << 20];

int main(void) {
	int dev = open("/dev/fill", O_CREAT | O_WRONLY, 0600);
	int shm = open("/dev/shm/fill", O_CREAT | O_WRONLY, 0600);
	int null = open("/dev/null", O_WRONLY);
	printf("dev %s, shm %s, null %s\n", dev < 0 ? "refused" : "took a file", shm < 0 ? "refused" : "took a file",
	       null >= 0 && write(null, "x", 1) == 1 ? "writable" : "broken");
	fflush(stdout);
	char name[32];
	memset(block, 'x', sizeof block);
	for (int f = 0; f < 1000; f++) {
		snprintf(name, sizeof name, "/tmp/fill%d", f);
		int fd = open(name, O_CREAT | O_WRONLY, 0600);
		if (fd < 0) break;
		for (int i = 0; i < 8; i++) {
			if (write(fd, block, sizeof block) < 0) break;
		}
		close(fd);
	}
	for (;;) sleep(1);
}
