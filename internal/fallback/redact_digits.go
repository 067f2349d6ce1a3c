package fallback

import (
	"strconv"
	"strings"
)

// digitSeparators may stand between the digit groups of one number: space,
// dot, dash, slash, parentheses, plus. A comma may not, so "1,200" and lists
// stay apart; a colon may not, so times do.
const digitSeparators = " \t.-/()+"

type digitGroup struct{ start, end int }

// digitRunFinder redacts runs of minDigits or more digits however they are
// separated (phones, accounts, order numbers, cards), so none is missed for
// being written in an unexpected format. Calendar dates and year ranges
// inside a run are not identifiers and are kept, so are the digits around
// them when too few on their own. A Luhn-valid stretch of 13-19 digits is a
// card.
func digitRunFinder(minDigits int, cards, digits bool) func(string) []match {
	return func(v string) []match {
		var out []match
		for _, run := range digitRuns(v) {
			out = append(out, classifyRun(v, run, minDigits, cards, digits)...)
		}
		return out
	}
}

// digitRuns splits v into digit groups joined by at most three separators.
func digitRuns(v string) [][]digitGroup {
	var runs [][]digitGroup
	var cur []digitGroup
	for i := 0; i < len(v); {
		if !isDigit(v[i]) {
			i++
			continue
		}
		j := i
		for j < len(v) && isDigit(v[j]) {
			j++
		}
		g := digitGroup{i, j}
		if n := len(cur); n > 0 {
			gap := v[cur[n-1].end:i]
			if len(gap) > 3 || strings.Trim(gap, digitSeparators) != "" {
				runs = append(runs, cur)
				cur = nil
			}
		}
		cur = append(cur, g)
		i = j
	}
	if len(cur) > 0 {
		runs = append(runs, cur)
	}
	return runs
}

func classifyRun(v string, run []digitGroup, minDigits int, cards, digits bool) []match {
	total := 0
	for _, g := range run {
		total += g.end - g.start
	}
	if total < minDigits && total < 13 {
		return nil
	}
	taken := make([]bool, len(run)) // a date or a card
	markCalendar(v, run, taken)
	var out []match
	if cards {
		for i := 0; i < len(run); i++ {
			if taken[i] {
				continue
			}
			if j, ok := cardAt(v, run, taken, i); ok {
				out = append(out, match{run[i].start, run[j].end, KindCard})
				for k := i; k <= j; k++ {
					taken[k] = true
				}
				i = j
			}
		}
	}
	if !digits {
		return out
	}
	for i := 0; i < len(run); {
		if taken[i] {
			i++
			continue
		}
		j, n := i, 0
		for ; j < len(run) && !taken[j]; j++ {
			n += run[j].end - run[j].start
		}
		if n >= minDigits {
			start := run[i].start
			if i == 0 {
				for start > 0 && start > run[0].start-2 && strings.ContainsRune("+(", rune(v[start-1])) {
					start--
				}
			}
			out = append(out, match{start, run[j-1].end, digitKind(v[start:run[j-1].end], n)})
		}
		i = j
	}
	return out
}

func digitKind(s string, digits int) string {
	if strings.ContainsAny(s, "+(") || digits >= 9 && digits <= 15 {
		return KindPhone
	}
	return KindNumber
}

// cardAt finds the longest Luhn-valid stretch of 13-19 digits starting at
// group i.
func cardAt(v string, run []digitGroup, taken []bool, i int) (int, bool) {
	var digits strings.Builder
	best := -1
	for j := i; j < len(run) && !taken[j] && digits.Len() <= 19; j++ {
		digits.WriteString(v[run[j].start:run[j].end])
		if n := digits.Len(); n >= 13 && n <= 19 && luhnValid(digits.String()) {
			best = j
		}
	}
	return best, best >= 0
}

// markCalendar marks the groups of dates (2024-05-17, 17.05.2024,
// 05/17/2024) and year ranges (2020-2024) that stand apart from the rest of
// the run: a date followed by its own separator and more digits
// (2019.10.05.123) is an identifier.
func markCalendar(v string, run []digitGroup, taken []bool) {
	text := func(k int) string { return v[run[k].start:run[k].end] }
	gap := func(k int) string { // the gap before group k
		if k <= 0 || k >= len(run) {
			return ""
		}
		return v[run[k-1].end:run[k].start]
	}
	apart := func(g, sep string) bool { return g == "" || strings.Contains(g, " ") || g != sep }
	for i := 0; i < len(run); i++ {
		if i+2 < len(run) {
			sep := gap(i + 1)
			if len(sep) == 1 && strings.Contains("-/.", sep) && gap(i+2) == sep &&
				isDate(text(i), text(i+1), text(i+2)) && apart(gap(i), sep) && apart(gap(i+3), sep) {
				taken[i], taken[i+1], taken[i+2] = true, true, true
				i += 2
				continue
			}
		}
		if i+1 < len(run) {
			sep := strings.TrimSpace(gap(i + 1))
			if (sep == "-" || sep == "/") && isYearRange(text(i), text(i+1)) && apart(gap(i), sep) && apart(gap(i+2), sep) {
				taken[i], taken[i+1] = true, true
				i++
			}
		}
	}
}

func isYear(s string) bool {
	y, err := strconv.Atoi(s)
	return err == nil && len(s) == 4 && y >= 1900 && y <= 2099
}

func isYearRange(a, b string) bool { return isYear(a) && isYear(b) && a < b }

// isDate reports whether three digit groups read as a calendar date, year
// first or year last, day and month in either order.
func isDate(a, b, c string) bool {
	small := func(s string) (int, bool) {
		n, err := strconv.Atoi(s)
		return n, err == nil && len(s) <= 2 && n >= 1
	}
	dayMonth := func(x, y string) bool {
		p, ok1 := small(x)
		q, ok2 := small(y)
		return ok1 && ok2 && (p <= 12 && q <= 31 || p <= 31 && q <= 12)
	}
	switch {
	case isYear(a):
		return dayMonth(b, c)
	case isYear(c):
		return dayMonth(a, b)
	}
	return false
}
