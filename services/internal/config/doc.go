// Package config loads mailmon's one YAML configuration file into Go structs.
//
// The root struct (shared sections nats, clickhouse, http, log, tracking and
// one section per worker) is defined by the command; this package is the
// generic machinery it uses. A value is settled in this order:
//
//  1. Defaults. The caller fills the struct before calling Load; a key the
//     file does not mention keeps its default, at any depth.
//  2. YAML. The file is parsed into a node tree, not straight into the
//     struct, so that the next two steps can see keys, paths and lines.
//  3. ${env:NAME}. References in scalar values are replaced by the
//     variable's value, which is how credentials reach the config without
//     being written in it. Keys are never expanded, and the replacement is
//     not parsed as YAML again, so an environment value can only ever be
//     one value and cannot add keys or lists. A plain reference is typed
//     from its new text (so a port can come from the environment); a quoted
//     one stays a string. An unset variable is a problem that names the
//     variable, never a value; ${env:NAME:-fallback} uses fallback instead
//     when NAME is unset or empty. A NAME missing from the environment is
//     read from the systemd credential of that name
//     ($CREDENTIALS_DIRECTORY/NAME, from a unit's LoadCredential=), so a
//     service gets its secrets without them being in its environment.
//  4. Strict keys. A key the struct does not declare is a problem, since a
//     misspelled key silently keeping its default is how a monitor ends up
//     monitoring nothing. Values of the wrong type are problems too.
//  5. Validate. If the root struct has a Validate() error method it runs
//     last; sections build their problems with Check and nest them, and
//     the root calls ValidateSections to run every section's Validate
//     under its yaml key, so a new section needs no list entry.
//
// Every problem from steps 2 to 5 is collected, not just the first, and
// returned as one Problems error listing "path: message (line N)" per line,
// so an operator fixes a file in one pass.
//
// Secret, Duration and ByteSize are the value types config sections use for
// credentials, periods ("30s", "7d") and sizes ("512MiB"). Print writes the
// effective configuration back as YAML with every Secret redacted, and the
// credentials inside any URL too (RedactURLs); that is what `mailmon
// check-config` shows. PlaceholderSecrets finds the Secrets that hold the
// public example-only- placeholders of the example and lab configs, which
// the root config refuses unless it is a lab's.
package config
