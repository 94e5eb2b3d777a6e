package quiz

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/mtibben/confusables"
	"golang.org/x/text/cases"
	"golang.org/x/text/secure/precis"

	"github.com/bulbquiz/bulb/protocol"
)

// Player names. A name is shown as the player typed it (trimmed, inner white space
// collapsed), but two names a person could take for each other may not sit in one room:
// "alice", "ALICE", "ａｌｉｃｅ" (fullwidth) and "аlice" (with a Cyrillic а) are one name.
//
// The profile is PRECIS's Nickname (RFC 8266), not UsernameCaseMapped (RFC 8265): a name
// on a quiz's leaderboard is a nickname, and the username profiles take no spaces
// ("ada lovelace") and few symbols. Nickname refuses what has no place in a name shown to
// a room: control characters, bidi overrides and isolates (U+202E turns the rest of a line
// around), zero-width characters, unassigned code points.

// checkName returns an Invalid *Error if name (trimmed) is no fit player name.
func checkName(name string) error {
	if name == "" || utf8.RuneCountInString(name) > MaxName {
		return Errorf(protocol.Invalid, "a name has 1 to %d characters", MaxName)
	}
	if strings.ContainsFunc(name, func(r rune) bool { return !unicode.IsPrint(r) }) {
		return Errorf(protocol.Invalid, "a name must be printable")
	}
	if _, err := precis.Nickname.String(name); err != nil {
		return Errorf(protocol.Invalid, "a name may not hold control, formatting or direction characters (such as U+202E)")
	}
	if strings.ContainsFunc(name, blank) {
		return Errorf(protocol.Invalid, "a name may not hold characters that show as blank (such as U+2800)")
	}
	if !strings.ContainsFunc(name, func(r rune) bool { return unicode.In(r, unicode.L, unicode.N, unicode.S) }) {
		return Errorf(protocol.Invalid, "a name needs a letter, a digit or a symbol")
	}
	return nil
}

// blank reports whether r is printable yet shows as nothing: the fillers and the braille
// blank, which PRECIS lets through, would make a name look like another, or like none.
func blank(r rune) bool {
	return r == '\u2800' || unicode.Is(unicode.Other_Default_Ignorable_Code_Point, r)
}

// foldName is the key under which a room keeps a name, unique in the room: two names a
// person could take for each other have one key. It is the Nickname profile's comparison
// key (NFKC, white space collapsed, lower case), case-folded in full (ß and ss, ς and σ)
// and reduced to its Unicode TR39 confusables skeleton ("аlice" and "alice", "rn" and
// "m"). Fold and skeleton are applied twice because the skeleton may map a letter to one
// that folds anew (a few Cherokee letters map to capitals). Last, i and l are one letter:
// a capital I looks like an l and folds to an i, so "aIice" could be read as "alice" and
// "alIce" typed for it. The key is for comparison only, never shown.
//
// Names that checkName refuses never reach a store; should one, it is keyed by its fold and
// skeleton alone, so that a store never fails on a name.
func foldName(name string) string {
	k, err := precis.Nickname.CompareKey(name)
	if err != nil {
		k = name
	}
	for range 2 {
		k = confusables.Skeleton(cases.Fold().String(k)) // a Caser is not safe to share
	}
	return strings.ReplaceAll(k, "i", "l")
}
