package s3client

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

// secretValue is a value no printed form of a Secret may contain.
const secretValue = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY"

// hidden holds a Secret in an unexported field, where fmt cannot call its
// methods.
type hidden struct {
	name   string
	secret Secret
}

func TestSecretNeverPrints(t *testing.T) {
	s := NewSecret(secretValue)
	var cfg Config
	cfg.RegisterFlagsWithPrefix("blocks-storage.", flag.NewFlagSet("test", flag.ContinueOnError))
	cfg.Endpoint, cfg.BucketName = "s3.example.com", "blocks"
	// No access key: Validate and NewClient then complain about the secret.
	cfg.SecretAccessKey = s

	yamlDump, err := yaml.Marshal(&cfg)
	require.NoError(t, err)
	jsonDump, err := json.Marshal(&cfg)
	require.NoError(t, err)

	// Each form is how a Secret could reach a log, an error or a dump.
	forms := map[string]string{
		"String":          s.String(),
		"GoString":        s.GoString(),
		"%v":              fmt.Sprintf("%v", s),
		"%+v":             fmt.Sprintf("%+v", s),
		"%#v":             fmt.Sprintf("%#v", s),
		"%s":              fmt.Sprintf("%s", s),
		"%q":              fmt.Sprintf("%q", s),
		"%x":              fmt.Sprintf("%x", s),
		"%X":              fmt.Sprintf("%X", s),
		"%d":              fmt.Sprintf("%d", s),
		"pointer %v":      fmt.Sprintf("%v", &s),
		"Config %+v":      fmt.Sprintf("%+v", cfg),
		"Config %#v":      fmt.Sprintf("%#v", cfg),
		"*Config %v":      fmt.Sprintf("%v", &cfg),
		"unexported %+v":  fmt.Sprintf("%+v", hidden{"x", s}),
		"unexported %#v":  fmt.Sprintf("%#v", hidden{"x", s}),
		"YAML of Config":  string(yamlDump),
		"JSON of Config":  string(jsonDump),
		"Validate error":  errText(cfg.Validate("")),
		"NewClient error": errText(newClientErr(cfg)),
	}
	for form, got := range forms {
		require.NotContains(t, got, secretValue, "%s of a Secret printed the secret", form)
		require.NotContains(t, got, "wJalrX", "%s of a Secret printed part of the secret", form)
	}

	require.Equal(t, Mask, s.String())
	require.ErrorContains(t, cfg.Validate(""), "secret_access_key", "the errors checked above")
	require.Contains(t, string(yamlDump), "secret_access_key: '"+Mask+"'",
		"the YAML dump shows a set secret as the mask")
	require.Equal(t, secretValue, s.Reveal(), "Reveal gives the value to the client")

	unset, err := yaml.Marshal(&Config{})
	require.NoError(t, err)
	require.Contains(t, string(unset), `secret_access_key: ""`,
		"the YAML dump shows an unset secret as empty")
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func newClientErr(cfg Config) error {
	_, err := cfg.NewClient()
	return err
}

func TestSecretSetFromYAMLAndFlags(t *testing.T) {
	tests := []struct {
		name  string
		args  []string // command line
		yaml  string   // the s3 block, "" for none
		want  string   // the revealed secret access key
		isSet bool
	}{
		{name: "unset", want: "", isSet: false},
		{name: "flag", args: []string{"-blocks-storage.s3.secret-access-key=" + secretValue},
			want: secretValue, isSet: true},
		{name: "yaml", yaml: "secret_access_key: " + secretValue + "\n",
			want: secretValue, isSet: true},
		{name: "yaml null", yaml: "secret_access_key: null\n", want: "", isSet: false},
		{name: "yaml empty", yaml: "secret_access_key: ''\n", want: "", isSet: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var cfg Config
			f := flag.NewFlagSet("test", flag.ContinueOnError)
			cfg.RegisterFlagsWithPrefix("blocks-storage.", f)
			require.NoError(t, yaml.Unmarshal([]byte(tc.yaml), &cfg), "yaml %q", tc.yaml)
			require.NoError(t, f.Parse(tc.args), "args %q", tc.args)
			require.Equal(t, tc.want, cfg.SecretAccessKey.Reveal(), "args %q, yaml %q",
				tc.args, tc.yaml)
			require.Equal(t, tc.isSet, cfg.SecretAccessKey.IsSet(), "args %q, yaml %q",
				tc.args, tc.yaml)
		})
	}
}

func TestSecretRefusesNonString(t *testing.T) {
	var cfg Config
	err := yaml.Unmarshal([]byte("secret_access_key: [a, b]\n"), &cfg)
	require.ErrorContains(t, err, "line 1: must be a string")
}

func TestSecretFlagHelpShowsNoValue(t *testing.T) {
	var cfg Config
	f := flag.NewFlagSet("test", flag.ContinueOnError)
	var help bytes.Buffer
	f.SetOutput(&help)
	cfg.RegisterFlagsWithPrefix("blocks-storage.", f)
	require.NoError(t, f.Parse([]string{"-blocks-storage.s3.secret-access-key", secretValue}))

	f.PrintDefaults()
	got := f.Lookup("blocks-storage.s3.secret-access-key").Value.String()
	require.Equal(t, Mask, got, "the flag's value as -help and flag.Visit see it")
	require.NotContains(t, help.String(), secretValue)
	require.Contains(t, help.String(), "-blocks-storage.s3.secret-access-key")
}
