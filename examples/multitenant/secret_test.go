package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/s3sse/s3sse/internal/s3client"
)

// secretValue is a value no printed form of a Secret may contain.
const secretValue = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY"

// TestSecretNeverPrints checks the example's whole configuration; every
// printed form of a Secret on its own is internal/s3client's test.
func TestSecretNeverPrints(t *testing.T) {
	s := NewSecret(secretValue)
	var cfg Config
	cfg.RegisterFlags(flag.NewFlagSet("test", flag.ContinueOnError))
	cfg.BlocksStorage.S3.SecretAccessKey = s
	cfg.RulerStorage.S3.SecretAccessKey = s

	yamlDump, err := yaml.Marshal(&cfg)
	require.NoError(t, err)
	jsonDump, err := json.Marshal(&cfg)
	require.NoError(t, err)
	method, err := cfg.YAML()
	require.NoError(t, err)

	// Each form is how the configuration could reach a log or a dump.
	forms := map[string]string{
		"S3Config %+v":       fmt.Sprintf("%+v", cfg.BlocksStorage.S3),
		"S3Config %#v":       fmt.Sprintf("%#v", cfg.BlocksStorage.S3),
		"Config %v":          fmt.Sprintf("%v", cfg),
		"*Config %+v":        fmt.Sprintf("%+v", &cfg),
		"YAML of the config": string(yamlDump),
		"JSON of the config": string(jsonDump),
		"Config.YAML":        method,
	}
	for form, got := range forms {
		require.NotContains(t, got, secretValue, "%s of a Secret printed the secret", form)
		require.NotContains(t, got, "wJalrX", "%s of a Secret printed part of the secret", form)
	}

	require.Contains(t, method, "secret_access_key: '"+s3client.Mask+"'",
		"the YAML dump shows a set secret as the mask")
	require.Contains(t, method, "secret_access_key: \"\"",
		"the YAML dump shows an unset secret as empty (alertmanager's)")
	require.Equal(t, secretValue, cfg.BlocksStorage.S3.SecretAccessKey.Reveal(),
		"the client still gets the value")
}

func TestSecretSetFromYAMLAndFlags(t *testing.T) {
	tests := []struct {
		name  string
		args  []string // command line
		yaml  string   // config file, "" for none
		want  string   // the revealed secret access key of blocks_storage
		isSet bool
	}{
		{name: "unset", want: "", isSet: false},
		{name: "flag", args: []string{"-blocks-storage.s3.secret-access-key=" + secretValue},
			want: secretValue, isSet: true},
		{name: "yaml", yaml: "blocks_storage:\n  s3:\n    secret_access_key: " + secretValue + "\n",
			want: secretValue, isSet: true},
		{name: "yaml null", yaml: "blocks_storage:\n  s3:\n    secret_access_key: null\n",
			want: "", isSet: false},
		{name: "the flag beats the file",
			args: []string{"-blocks-storage.s3.secret-access-key=from-flag"},
			yaml: "blocks_storage:\n  s3:\n    secret_access_key: from-file\n",
			want: "from-flag", isSet: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			if tc.yaml != "" {
				args = append([]string{"-config.file=" + writeTemp(t, "config.yaml", tc.yaml)}, args...)
			}
			cfg, _, _, _, err := parseArgs(args, &strings.Builder{})
			require.NoError(t, err, "args %q, yaml %q", args, tc.yaml)
			got := cfg.BlocksStorage.S3.SecretAccessKey
			require.Equal(t, tc.want, got.Reveal(), "args %q, yaml %q", args, tc.yaml)
			require.Equal(t, tc.isSet, got.IsSet(), "args %q, yaml %q", args, tc.yaml)
		})
	}
}

func TestSecretRefusesNonString(t *testing.T) {
	file := writeTemp(t, "config.yaml", "blocks_storage:\n  s3:\n    secret_access_key: [a, b]\n")
	_, _, _, _, err := parseArgs([]string{"-config.file=" + file}, &strings.Builder{})
	require.ErrorContains(t, err, "line 3: must be a string")
}
