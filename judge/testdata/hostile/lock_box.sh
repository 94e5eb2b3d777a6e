# Makes what it leaves in the box as hard to remove as it can: unreadable, unwritable
# directories with files in them, and the box itself read-only.
mkdir -p a/b/c && touch a/b/c/f a/f
chmod 000 a/b/c a/b a
chmod 500 .
echo done
