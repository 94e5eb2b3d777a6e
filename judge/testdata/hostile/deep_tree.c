// Builds a directory chain as deep as it can, holding a descriptor on every level (an
// earlier Bulb's cleanup walked such a tree with one descriptor per level, and failed with
// "too many open files", leaving the box broken for everyone).
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

int main(void) {
	int fd = open(".", O_RDONLY | O_DIRECTORY);
	long levels = 0;
	for (; levels < 200000; levels++) {
		if (mkdirat(fd, "d", 0700) != 0) break;
		int next = openat(fd, "d", O_RDONLY | O_DIRECTORY);
		if (next < 0) break;
		fd = next;
	}
	printf("%ld\n", levels);
	return 0;
}
