package main

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/alecthomas/kong"

	"github.com/kaelix-io/kaelix/wire"
)

// CompletionCmd is `kaelixctl completion bash|zsh|fish`: prints a script
// that completes kaelixctl's verbs, flags and enum values from its own
// grammar (the kong model), and topic names from kaelixd where it
// answers. The scripts call the hidden `kaelixctl __complete -- WORDS`,
// so they stay right as kaelixctl changes.
//
//	source <(kaelixctl completion bash)          # ~/.bashrc
//	kaelixctl completion zsh > "${fpath[1]}/_kaelixctl"
//	kaelixctl completion fish > ~/.config/fish/completions/kaelixctl.fish
type CompletionCmd struct {
	Shell string `arg:"" enum:"bash,zsh,fish" help:"bash, zsh or fish."`
}

// Run prints the script.
func (cmd *CompletionCmd) Run(g *Globals) error {
	_, err := fmt.Fprint(g.stdout, completionScripts[cmd.Shell])
	return err
}

var completionScripts = map[string]string{
	"bash": `# kaelixctl completion for bash: source <(kaelixctl completion bash)
_kaelixctl() {
	local IFS=$'\n'
	COMPREPLY=($(kaelixctl __complete -- "${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null))
}
complete -o default -o nospace -F _kaelixctl kaelixctl 2>/dev/null || complete -o default -F _kaelixctl kaelixctl
`,
	"zsh": `#compdef kaelixctl
# kaelixctl completion for zsh: kaelixctl completion zsh > "${fpath[1]}/_kaelixctl"
_kaelixctl() {
	local -a candidates
	candidates=("${(@f)$(kaelixctl __complete -- "${(@)words[2,CURRENT]}" 2>/dev/null)}")
	compadd -Q -a candidates
}
if [ "$funcstack[1]" = "_kaelixctl" ]; then
	_kaelixctl "$@"
else
	compdef _kaelixctl kaelixctl
fi
`,
	"fish": `# kaelixctl completion for fish: kaelixctl completion fish > ~/.config/fish/completions/kaelixctl.fish
function __kaelixctl_complete
	set -l tokens (commandline -opc)
	set -l current (commandline -ct)
	kaelixctl __complete -- $tokens[2..-1] "$current" 2>/dev/null
end
complete -c kaelixctl -f -a '(__kaelixctl_complete)'
`,
}

// CompleteCmd is the hidden `kaelixctl __complete -- WORDS...`: WORDS are
// the command line after "kaelixctl", the last one being completed
// (possibly ""); it prints the candidates, one per line.
type CompleteCmd struct {
	Words []string `arg:"" optional:"" passthrough:"" help:"The words typed so far."`
}

// Run prints the candidates for the last word.
func (cmd *CompleteCmd) Run(g *Globals, kctx *kong.Context) error {
	words := cmd.Words
	if len(words) > 0 && words[0] == "--" {
		words = words[1:]
	}
	for _, c := range complete(kctx.Model.Node, words, func(socket string) []string { return topicNames(g, socket) }) {
		fmt.Fprintln(g.stdout, c)
	}
	return nil
}

// complete returns the candidates for the last of words in the grammar
// rooted at root. topics lists topic names (for positionals and flags
// tagged predictor:"topic"), given the --socket typed, if any.
func complete(root *kong.Node, words []string, topics func(socket string) []string) []string {
	if len(words) == 0 {
		words = []string{""}
	}
	cur, done := words[len(words)-1], words[:len(words)-1]
	node := root
	positional := 0
	socket := ""
	var pending *kong.Flag // a flag whose value is the next word
	for _, w := range done {
		if pending != nil {
			if pending.Name == "socket" {
				socket = w
			}
			pending = nil
			continue
		}
		if strings.HasPrefix(w, "-") && w != "-" {
			name, value, hasValue := strings.Cut(strings.TrimLeft(w, "-"), "=")
			f := findFlag(node, name, strings.HasPrefix(w, "--"))
			if f != nil && !f.IsBool() && !hasValue {
				pending = f
			}
			if f != nil && f.Name == "socket" && hasValue {
				socket = value
			}
			continue
		}
		if child := findChild(node, w); child != nil {
			node, positional = child, 0
			continue
		}
		positional++
	}
	var out []string
	add := func(cands []string) {
		for _, c := range cands {
			if strings.HasPrefix(c, cur) {
				out = append(out, c)
			}
		}
	}
	switch {
	case pending != nil:
		switch {
		case pending.Enum != "":
			add(pending.EnumSlice())
		case pending.Tag.Get("predictor") == "topic":
			add(topics(socket))
		}
		return out
	case strings.HasPrefix(cur, "-"):
		var names []string
		for n := node; n != nil; n = n.Parent {
			for _, f := range n.Flags {
				if f.Hidden {
					continue
				}
				names = append(names, "--"+f.Name)
				if f.Tag.Negatable != "" {
					names = append(names, "--no-"+f.Name)
				}
			}
		}
		sort.Strings(names)
		add(names)
		return out
	}
	var names []string
	for _, c := range node.Children {
		if !c.Hidden {
			names = append(names, c.Name)
		}
	}
	sort.Strings(names)
	add(names)
	if positional < len(node.Positional) {
		p := node.Positional[positional]
		switch {
		case p.Enum != "":
			add(p.EnumSlice())
		case p.Tag.Get("predictor") == "topic":
			add(topics(socket))
		}
	}
	return out
}

func findFlag(node *kong.Node, name string, long bool) *kong.Flag {
	for n := node; n != nil; n = n.Parent {
		for _, f := range n.Flags {
			if long && (f.Name == name || f.Negated && "no-"+f.Name == name || f.Tag.Negatable != "" && "no-"+f.Name == name) {
				return f
			}
			if !long && f.Short != 0 && string(f.Short) == name {
				return f
			}
			for _, a := range f.Aliases {
				if long && a == name {
					return f
				}
			}
		}
	}
	return nil
}

func findChild(node *kong.Node, name string) *kong.Node {
	for _, c := range node.Children {
		if c.Name == name {
			return c
		}
		for _, a := range c.Aliases {
			if a == name {
				return c
			}
		}
	}
	return nil
}

// topicNames asks kaelixd for its topics, waiting at most 300 ms (a
// completion must not hang on a stopped daemon); nil if it does not
// answer.
func topicNames(g *Globals, socket string) []string {
	short := *g
	short.Timeout = 300 * time.Millisecond
	if socket != "" {
		short.Socket = socket
	}
	var list wire.TopicList
	if short.listTopics(&list) != nil {
		return nil
	}
	var out []string
	for _, t := range list.Topics {
		out = append(out, t.Spec.Name)
	}
	sort.Strings(out)
	return out
}
