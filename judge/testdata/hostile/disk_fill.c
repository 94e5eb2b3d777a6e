// Writes files of 8 MiB (under the per-file limit) until the box is full, then goes on
// spinning: it is ended for its disk, not left to its CPU or wall-clock limit.
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static char block[1 << 20];

int main(void) {
	char name[32];
	memset(block, 'x', sizeof block);
	for (int f = 0; f < 1000; f++) {
		snprintf(name, sizeof name, "fill%d", f);
		int fd = open(name, O_CREAT | O_WRONLY, 0600);
		if (fd < 0) break;
		for (int i = 0; i < 8; i++) {
			if (write(fd, block, sizeof block) < 0) break;
		}
		close(fd);
	}
	for (;;) sleep(1);
}
