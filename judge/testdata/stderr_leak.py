# A hostile submission: it copies each test's input to stderr and fails, so that a verdict
# showing stderr would show the hidden test's input.
import sys

sys.stderr.write(sys.stdin.read())
sys.exit(1)
