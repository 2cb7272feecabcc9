package main

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"
)

// applyConfigFile sets every flag of fs that is still unset (neither on the
// command line nor from the environment) from the YAML file at path: a
// mapping from flag names to values (`data: /var/lib/spool`, `fsync:
// always`; a list for a flag that takes several values). A key that names
// no flag is an error, so a typo is never silently ignored.
func applyConfigFile(fs *pflag.FlagSet, path string) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return fmt.Errorf("config %s: not a YAML mapping of flag names to values: %w", path, err)
	}
	keys := make([]string, 0, len(doc))
	for k := range doc {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var errs []error
	for _, k := range keys {
		fl := fs.Lookup(k)
		if fl == nil || k == "config" {
			errs = append(errs, fmt.Errorf("config %s: unknown key %q (keys are the flag names of `spool serve --help`)", path, k))
			continue
		}
		if fl.Changed {
			continue // the command line or the environment wins
		}
		for _, v := range configValues(doc[k]) {
			if err := fs.Set(k, v); err != nil {
				errs = append(errs, fmt.Errorf("config %s: %s: %q: %w", path, k, v, err))
			}
		}
	}
	return errors.Join(errs...)
}

// configValues turns a YAML value into the strings pflag parses: a list
// into one value per element, null into the empty string.
func configValues(v any) []string {
	switch v := v.(type) {
	case nil:
		return []string{""}
	case []any:
		out := make([]string, len(v))
		for i, e := range v {
			out[i] = strings.TrimSpace(fmt.Sprint(e))
		}
		return out
	default:
		return []string{fmt.Sprint(v)}
	}
}
