package main

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

// output is a reading verb's -o/--output flag: text for people (the default), json for
// scripts. Each verb builds one value and hands it to print with its text rendering.
type output struct{ format string }

// addOutput declares -o/--output on cmd.
func addOutput(cmd *cobra.Command) *output {
	o := &output{}
	cmd.Flags().StringVarP(&o.format, "output", "o", "text", "output format: text or json")
	return o
}

// check refuses an unknown format before the verb does anything (a usage error).
func (o *output) check() error {
	switch o.format {
	case "text", "json":
		return nil
	}
	return usage(fmt.Errorf("--output %q: want text or json", o.format))
}

func (o *output) json() bool { return o.format == "json" }

// print writes v as indented JSON with -o json, else calls text.
func (o *output) print(w io.Writer, v any, text func(io.Writer) error) error {
	if err := o.check(); err != nil {
		return err
	}
	if o.json() {
		return writeJSON(w, v, true)
	}
	return text(w)
}

// writeJSON writes v as one JSON document: indented, or on one line (a stream of objects,
// one a line, as `watch` and `status --watch` print).
func writeJSON(w io.Writer, v any, indent bool) error {
	enc := json.NewEncoder(w)
	if indent {
		enc.SetIndent("", "  ")
	}
	return enc.Encode(v)
}
