package cmd

import (
	"slices"
	"strings"
)

// envPrefix starts the name of every variable trawl reads.
const envPrefix = "TRAWL_"

// unknownEnv returns a warning for each TRAWL_* variable in environ (as
// os.Environ gives it) that names no setting, with the closest known name
// when one is near. A misspelled variable is otherwise ignored without a
// word, while a misspelled config file key is an error; a warning, not an
// error, because the environment may be shared with other trawl versions.
// Variables set to "" count as unset, as they do for settings.
func unknownEnv(environ []string, table []option) []string {
	known := []string{envName("config")}
	for _, o := range table {
		known = append(known, envName(o.name))
	}
	// Not settings, but trawl's own: it sets them for exec transforms, and
	// what they run may run trawl.
	notSettings := []string{"TRAWL_URL", "TRAWL_FINAL_URL", "TRAWL_STATUS", "TRAWL_CONTENT_TYPE"}

	suffixes := make([]string, len(known))
	for i, k := range known {
		suffixes[i] = strings.TrimPrefix(k, envPrefix)
	}

	var warnings []string
	seen := map[string]bool{}
	for _, kv := range environ {
		name, value, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, envPrefix) || value == "" || seen[name] ||
			slices.Contains(known, name) || slices.Contains(notSettings, name) {
			continue
		}
		seen[name] = true
		w := name + " is not a trawl setting"
		// Names are compared without the prefix they share, and in
		// capitals: a lowercase variable is a different one, meant as the
		// same.
		if sugg, ok := closest(strings.ToUpper(strings.TrimPrefix(name, envPrefix)), suffixes); ok {
			w += "; did you mean " + envPrefix + sugg + "?"
		}
		warnings = append(warnings, w)
	}
	slices.Sort(warnings)
	return warnings
}

// closest returns the candidate nearest to s in edit distance, the first
// of equals, when it is near enough to be what s was meant to be: within
// a third of the length of s, and at least one edit.
func closest(s string, candidates []string) (string, bool) {
	best, bestDist := "", -1
	for _, c := range candidates {
		if d := editDistance(s, c); bestDist < 0 || d < bestDist {
			best, bestDist = c, d
		}
	}
	limit := max(1, len(s)/3)
	if bestDist < 0 || bestDist > limit {
		return "", false
	}
	return best, true
}

// editDistance is the Levenshtein distance between a and b, in bytes (the
// names compared are ASCII).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// optionNames returns the names of the options in table, in its order.
func optionNames(table []option) []string {
	names := make([]string, len(table))
	for i, o := range table {
		names[i] = o.name
	}
	return names
}
