package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/callflow/callflow/internal/tomlpos"
)

// writeConfig writes src to a callflow.toml of its own and returns the path.
func writeConfig(t *testing.T, src string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "callflow.toml")
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestDefaultsAreValid(t *testing.T) {
	if err := Default().Validate(); err != nil {
		t.Fatalf("Default().Validate() = %v", err)
	}
}

func TestDefaults(t *testing.T) {
	c, err := load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		got, want any
	}{
		{"flows_dir", c.FlowsDir, "flows"},
		{"sounds_dir", c.SoundsDir, ""},
		{"database", c.Database, "callflow.db"},
		{"recordings_dir", c.RecordingsDir, "/var/spool/asterisk/recording"},
		{"default_country", c.DefaultCountry, "1"},
		{"workspace", c.Workspace, "default"},
		{"ari.url", c.ARI.URL, "http://127.0.0.1:8088/ari"},
		{"ari.events_url", c.ARI.EventsURL(), "ws://127.0.0.1:8088/ari/events"},
		{"ari.app", c.ARI.App, "callflow"},
		{"ari.username", c.ARI.Username, "callflow"},
		{"ari.request_timeout", c.ARI.RequestTimeout.D(), 5 * time.Second},
		{"ari.reconnect_min", c.ARI.ReconnectMin.D(), 500 * time.Millisecond},
		{"ari.reconnect_max", c.ARI.ReconnectMax.D(), 10 * time.Second},
		{"ari.event_filter", c.ARI.EventFilter, true},
		{"ari.enabled", c.ARI.Enabled, true},
		{"ari.standby_for", c.ARI.StandbyFor, ""},
		{"ari.takeover_after", c.ARI.TakeoverAfter.D(), 3 * time.Second},
		{"node.name", c.Node.Name, ""},
		{"node name is the host's", c.NodeName(), hostName()},
		{"agi.listen", c.AGI.Listen, ""},
		{"agi.command_timeout", c.AGI.CommandTimeout.D(), 10 * time.Second},
		{"http.listen", c.HTTP.Listen, "127.0.0.1:8080"},
		{"http.trusted_proxies", c.HTTP.TrustedProxies, []string{}},
		{"log.level", c.Log.Level, "info"},
		{"log.format", c.Log.Format, "json"},
		{"calls.max_steps", c.Calls.MaxSteps, 100},
		{"calls.max_duration", c.Calls.MaxDuration.D(), 4 * time.Hour},
		{"calls.drain_timeout", c.Calls.DrainTimeout.D(), 30 * time.Second},
		{"calls.not_in_service", c.Calls.NotInService, []string{"sound:ss-noservice"}},
		{"calls.qualified_after", c.Calls.QualifiedAfter.D(), 30 * time.Second},
		{"smtp.port", c.SMTP.Port, 587},
		{"smtp.from", c.SMTP.From, "callflow@localhost"},
		{"smtp.tls", c.SMTP.TLS, "starttls"},
		{"smtp.timeout", c.SMTP.Timeout.D(), 10 * time.Second},
		{"sms.technology", c.SMS.Technology, "pjsip"},
		{"tts.command", c.TTS.Command, []string{"espeak-ng", "-w", "{out}", "--", "{text}"}},
		{"tts.convert", c.TTS.Convert, []string{"sox", "{in}", "-r", "8000", "-c", "1", "-b", "16", "{out}"}},
		{"tts.cache_dir", c.TTSCacheDir(), ""},
		{"webhooks.timeout", c.Webhooks.Timeout.D(), 5 * time.Second},
		{"webhooks.max_attempts", c.Webhooks.MaxAttempts, 6},
	} {
		if !reflect.DeepEqual(tc.got, tc.want) {
			t.Errorf("%s = %#v, want %#v", tc.name, tc.got, tc.want)
		}
	}
}

func TestDefaultReturnsIndependentCopies(t *testing.T) {
	a := Default()
	a.Calls.NotInService[0] = "sound:changed"
	if got := Default().Calls.NotInService[0]; got != "sound:ss-noservice" {
		t.Fatalf("changing one Default() changed the next: %q", got)
	}
}

func TestFileOverridesDefaults(t *testing.T) {
	for _, tc := range []struct {
		name  string
		src   string
		check func(*Config) any
		want  any
	}{
		{"top-level string", `flows_dir = "/etc/callflow/flows"`, func(c *Config) any { return c.FlowsDir }, "/etc/callflow/flows"},
		{"section string", "[ari]\npassword = \"s3cret\"", func(c *Config) any { return c.ARI.Password }, "s3cret"},
		{"dotted key", `ari.app = "other"`, func(c *Config) any { return c.ARI.App }, "other"},
		{"bool", "[ari]\nenabled = false", func(c *Config) any { return c.ARI.Enabled }, false},
		{"int", "[calls]\nmax_steps = 7", func(c *Config) any { return c.Calls.MaxSteps }, 7},
		{"duration string", "[calls]\nmax_duration = \"1h30m\"", func(c *Config) any { return c.Calls.MaxDuration.D() }, 90 * time.Minute},
		{"duration seconds", "[webhooks]\ntimeout = 12", func(c *Config) any { return c.Webhooks.Timeout.D() }, 12 * time.Second},
		{"list", "[http]\ntrusted_proxies = [\"10.0.0.0/8\", \"::1\"]", func(c *Config) any { return c.HTTP.TrustedProxies }, []string{"10.0.0.0/8", "::1"}},
		{"list replaced, not appended", "[calls]\nnot_in_service = [\"tone:busy\"]", func(c *Config) any { return c.Calls.NotInService }, []string{"tone:busy"}},
		{"empty list", "[tts]\nconvert = []", func(c *Config) any { return c.TTS.Convert }, []string{}},
		{"explicit websocket url", "[ari]\nwebsocket_url = \"wss://pbx/events\"", func(c *Config) any { return c.ARI.EventsURL() }, "wss://pbx/events"},
		{"https url gives wss events", "[ari]\nurl = \"https://pbx.example.com/ari/\"", func(c *Config) any { return c.ARI.EventsURL() }, "wss://pbx.example.com/ari/events"},
		{"tts cache under sounds", `sounds_dir = "/var/lib/asterisk/sounds"`, func(c *Config) any { return c.TTSCacheDir() }, "/var/lib/asterisk/sounds/tts"},
		{"tts cache set", "[tts]\ncache_dir = \"/tmp/tts\"", func(c *Config) any { return c.TTSCacheDir() }, "/tmp/tts"},
		{"other keys keep defaults", "[ari]\npassword = \"x\"", func(c *Config) any { return c.ARI.Username }, "callflow"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := load(writeConfig(t, tc.src), nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := tc.check(c); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %#v, want %#v", got, tc.want)
			}
		})
	}
}

func TestEnvOverrides(t *testing.T) {
	for _, tc := range []struct {
		name  string
		env   map[string]string
		file  string
		check func(*Config) any
		want  any
	}{
		{"top level", map[string]string{"CALLFLOW_FLOWS_DIR": "/srv/flows"}, "", func(c *Config) any { return c.FlowsDir }, "/srv/flows"},
		{"section", map[string]string{"CALLFLOW_ARI_PASSWORD": "pw"}, "", func(c *Config) any { return c.ARI.Password }, "pw"},
		{"wins over file", map[string]string{"CALLFLOW_LOG_LEVEL": "debug"}, "[log]\nlevel = \"warn\"", func(c *Config) any { return c.Log.Level }, "debug"},
		{"empty value clears", map[string]string{"CALLFLOW_HTTP_LISTEN": ""}, "", func(c *Config) any { return c.HTTP.Listen }, ""},
		{"bool", map[string]string{"CALLFLOW_ARI_EVENT_FILTER": "false"}, "", func(c *Config) any { return c.ARI.EventFilter }, false},
		{"int", map[string]string{"CALLFLOW_WEBHOOKS_MAX_ATTEMPTS": " 3 "}, "", func(c *Config) any { return c.Webhooks.MaxAttempts }, 3},
		{"duration", map[string]string{"CALLFLOW_CALLS_DRAIN_TIMEOUT": "2m"}, "", func(c *Config) any { return c.Calls.DrainTimeout.D() }, 2 * time.Minute},
		{"duration seconds", map[string]string{"CALLFLOW_CALLS_DRAIN_TIMEOUT": "45"}, "", func(c *Config) any { return c.Calls.DrainTimeout.D() }, 45 * time.Second},
		{"list comma-separated", map[string]string{"CALLFLOW_HTTP_TRUSTED_PROXIES": "10.0.0.0/8, 192.168.1.10"}, "", func(c *Config) any { return c.HTTP.TrustedProxies }, []string{"10.0.0.0/8", "192.168.1.10"}},
		{"empty list", map[string]string{"CALLFLOW_TTS_CONVERT": ""}, "", func(c *Config) any { return c.TTS.Convert }, []string{}},
		{"config path is not a key", map[string]string{"CALLFLOW_CONFIG": "/etc/callflow.toml"}, "", func(c *Config) any { return c.FlowsDir }, "flows"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			path := ""
			if tc.file != "" {
				path = writeConfig(t, tc.file)
			}
			c, err := Load(path)
			if err != nil {
				t.Fatal(err)
			}
			if got := tc.check(c); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %#v, want %#v", got, tc.want)
			}
		})
	}
}

func TestEnvErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"unknown variable", map[string]string{"CALLFLOW_ARI_PASWORD": "x"}, []string{"CALLFLOW_ARI_PASWORD: unknown variable", "did you mean CALLFLOW_ARI_PASSWORD?"}},
		{"unknown section", map[string]string{"CALLFLOW_NOPE": "x"}, []string{"CALLFLOW_NOPE: unknown variable"}},
		{"bad int", map[string]string{"CALLFLOW_CALLS_MAX_STEPS": "many"}, []string{"CALLFLOW_CALLS_MAX_STEPS: calls.max_steps: want an integer"}},
		{"bad bool", map[string]string{"CALLFLOW_ARI_ENABLED": "yes please"}, []string{"CALLFLOW_ARI_ENABLED: ari.enabled: want true or false"}},
		{"bad duration", map[string]string{"CALLFLOW_ARI_REQUEST_TIMEOUT": "5 seconds"}, []string{"CALLFLOW_ARI_REQUEST_TIMEOUT: ari.request_timeout: bad duration"}},
		{"negative duration", map[string]string{"CALLFLOW_ARI_REQUEST_TIMEOUT": "-5s"}, []string{"CALLFLOW_ARI_REQUEST_TIMEOUT", "negative"}},
		{"all problems at once", map[string]string{"CALLFLOW_A": "1", "CALLFLOW_B": "2"}, []string{"CALLFLOW_A:", "CALLFLOW_B:"}},
		{"invalid value names the variable", map[string]string{"CALLFLOW_LOG_LEVEL": "verbose"}, []string{"CALLFLOW_LOG_LEVEL: log.level: must be one of debug, info, warn, error"}},
		{"bad list item names the variable", map[string]string{"CALLFLOW_HTTP_TRUSTED_PROXIES": "10.0.0.1,nope"}, []string{"CALLFLOW_HTTP_TRUSTED_PROXIES: http.trusted_proxies[1]: want an IP address"}},
		{"zero duration names the variable", map[string]string{"CALLFLOW_SMTP_TIMEOUT": "0"}, []string{"CALLFLOW_SMTP_TIMEOUT: smtp.timeout: must be more than zero"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			_, err := Load("")
			if err == nil {
				t.Fatal("Load succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			var ee *EnvError
			if !errors.As(err, &ee) {
				t.Errorf("error %v is not an *EnvError", err)
			}
		})
	}
}

func TestFileErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		src  string
		want string // after "<path>:"
	}{
		{"unknown top-level key", "flows_dir = \"f\"\nflow_dir = \"f\"\n", `2:1: unknown key "flow_dir" (did you mean "flows_dir"?)`},
		{"unknown key in section", "[ari]\nurl = \"http://x/ari\"\n  passwrd = \"x\"\n", `3:3: unknown key "passwrd" (did you mean "password"?)`},
		{"unknown section", "[databse]\npath = \"x\"\n", `1:1: unknown key "databse" (did you mean "database"?)`},
		{"unknown dotted key", "log.colour = true\n", `1:1: unknown key "colour"`},
		{"wrong type", "[calls]\nmax_steps = \"100\"\n", `2:1: max_steps: want an integer, got a string`},
		{"wrong type list", "[http]\ntrusted_proxies = \"10.0.0.1\"\n", `2:1: trusted_proxies: want a list, got a string`},
		{"wrong type list item", "[tts]\ncommand = [\"say\", 1]\n", `2:19: command[1]: want a string, got an integer`},
		{"section given a value", "smtp = 1\n", `1:1: smtp: want a table, got an integer`},
		{"bad duration", "[ari]\nrequest_timeout = \"5 sec\"\n", `2:1: request_timeout: bad duration "5 sec"`},
		{"negative duration", "[webhooks]\ntimeout = \"-1s\"\n", `2:1: timeout: duration "-1s" is negative`},
		{"syntax error", "[calls]\nmax_steps = = 2\n", `2:13: syntax: unexpected character U+003D '=' at start of value`},
		{"invalid value", "[log]\n\nformat = \"text\"\n", `3:1: log.format: must be one of json, console, got "text"`},
		{"invalid list item", "[http]\ntrusted_proxies = [\"10.0.0.1\", \"nope\"]\n", `2:32: http.trusted_proxies[1]: want an IP address`},
		{"cross-key problem points at the written key", "[ari]\nreconnect_min = \"1m\"\n", `2:1: ari.reconnect_min: 1m0s is more than ari.reconnect_max 10s`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := writeConfig(t, tc.src)
			_, err := load(path, nil)
			if err == nil {
				t.Fatal("load succeeded")
			}
			if want := path + ":" + tc.want; !strings.Contains(err.Error(), want) {
				t.Errorf("error:\n  %v\nwant it to contain:\n  %s", err, want)
			}
		})
	}
}

func TestFileErrorsAreAllReportedInOrder(t *testing.T) {
	path := writeConfig(t, "[smtp]\nprot = 25\n[ari]\nusr = \"x\"\n[calls]\nmax_steps = true\n")
	_, err := load(path, nil)
	if err == nil {
		t.Fatal("load succeeded")
	}
	lines := strings.Split(err.Error(), "\n")
	want := []string{path + ":2:1: ", path + ":4:1: ", path + ":6:1: "}
	if len(lines) != len(want) {
		t.Fatalf("got %d errors, want %d:\n%v", len(lines), len(want), err)
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("error %d = %q, want prefix %q", i, lines[i], w)
		}
	}
	var te *tomlpos.Error
	if !errors.As(err, &te) || te.Pos.Line != 2 {
		t.Errorf("errors.As(*tomlpos.Error) = %v, want the line 2 error", te)
	}
}

func TestMissingFile(t *testing.T) {
	_, err := load(filepath.Join(t.TempDir(), "absent.toml"), nil)
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("err = %v, want not exist", err)
	}
}

func TestValidation(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*Config)
		want   string // "" = valid
	}{
		{"node name empty is the host's", func(c *Config) { c.Node.Name = "" }, ""},
		{"node name bad", func(c *Config) { c.Node.Name = "pbx/1" }, `node.name: want 1 to 63 letters`},
		{"node name with a space", func(c *Config) { c.Node.Name = "pbx 1" }, `node.name:`},
		{"node name with a quote", func(c *Config) { c.Node.Name = `a"b` }, `node.name:`},
		{"node name too long", func(c *Config) { c.Node.Name = strings.Repeat("n", 64) }, `node.name:`},
		{"node name ok", func(c *Config) { c.Node.Name = "pbx1-a.example_1" }, ""},
		{"standby for its own app", func(c *Config) { c.ARI.StandbyFor = c.ARI.App }, `ari.standby_for: a standby needs an application of its own`},
		{"standby for a bad name", func(c *Config) { c.ARI.App = "b"; c.ARI.StandbyFor = "a,b" }, `ari.standby_for: want a Stasis application name`},
		{"standby ok", func(c *Config) { c.ARI.App = "callflow-b"; c.ARI.StandbyFor = "callflow-a" }, ""},
		{"zero takeover", func(c *Config) { c.ARI.TakeoverAfter = 0 }, `ari.takeover_after: must be at least 2s`},
		{"takeover within two heartbeats", func(c *Config) { c.ARI.TakeoverAfter = dur(time.Second) }, `ari.takeover_after: must be at least 2s`},
		{"log level", func(c *Config) { c.Log.Level = "trace" }, `log.level: must be one of debug, info, warn, error, got "trace"`},
		{"log format", func(c *Config) { c.Log.Format = "text" }, `log.format: must be one of json, console`},
		{"smtp tls", func(c *Config) { c.SMTP.TLS = "ssl" }, `smtp.tls: must be one of starttls, tls, none`},
		{"smtp port", func(c *Config) { c.SMTP.Port = 0 }, `smtp.port: must be 1-65535`},
		{"smtp from", func(c *Config) { c.SMTP.From = "not an address" }, `smtp.from: want a mail address`},
		{"smtp from needed with host", func(c *Config) { c.SMTP.Host = "mail"; c.SMTP.From = "" }, `smtp.from:`},
		{"zero duration", func(c *Config) { c.ARI.RequestTimeout = 0 }, `ari.request_timeout: must be more than zero`},
		{"zero drain", func(c *Config) { c.Calls.DrainTimeout = 0 }, `calls.drain_timeout: must be more than zero`},
		{"reconnect min above max", func(c *Config) { c.ARI.ReconnectMin = dur(time.Minute) }, `ari.reconnect_min: 1m0s is more than ari.reconnect_max 10s`},
		{"max steps", func(c *Config) { c.Calls.MaxSteps = 0 }, `calls.max_steps: must be at least 1, got 0`},
		{"max attempts", func(c *Config) { c.Webhooks.MaxAttempts = 0 }, `webhooks.max_attempts: must be at least 1`},
		{"ari url not a url", func(c *Config) { c.ARI.URL = "127.0.0.1:8088" }, `ari.url: want an absolute http/https:// URL`},
		{"ari url bad scheme", func(c *Config) { c.ARI.URL = "ws://127.0.0.1:8088/ari" }, `ari.url:`},
		{"ari url unparsable", func(c *Config) { c.ARI.URL = "http://[::1" }, `ari.url:`},
		{"ari url unchecked when disabled", func(c *Config) { c.ARI.Enabled = false; c.ARI.URL = "" }, ""},
		{"websocket url scheme", func(c *Config) { c.ARI.WebsocketURL = "http://x/events" }, `ari.websocket_url: want an absolute ws/wss:// URL`},
		{"base url", func(c *Config) { c.HTTP.BaseURL = "calls.example.com" }, `http.base_url:`},
		{"base url ok", func(c *Config) { c.HTTP.BaseURL = "https://calls.example.com/" }, ""},
		{"http listen no port", func(c *Config) { c.HTTP.Listen = "127.0.0.1" }, `http.listen: want host:port`},
		{"http listen bad port", func(c *Config) { c.HTTP.Listen = ":http-alt" }, `http.listen:`},
		{"http listen port too big", func(c *Config) { c.HTTP.Listen = ":70000" }, `http.listen:`},
		{"http listen off", func(c *Config) { c.HTTP.Listen = "" }, ""},
		{"agi listen ipv6", func(c *Config) { c.AGI.Listen = "[::]:4573" }, ""},
		{"agi listen bad", func(c *Config) { c.AGI.Listen = "0.0.0.0:4573:1" }, `agi.listen:`},
		{"country letters", func(c *Config) { c.DefaultCountry = "+1" }, `default_country: must be a calling code of 1 to 3 digits`},
		{"country too long", func(c *Config) { c.DefaultCountry = "1234" }, `default_country:`},
		{"country empty", func(c *Config) { c.DefaultCountry = "" }, `default_country:`},
		{"country leading zero", func(c *Config) { c.DefaultCountry = "01" }, `default_country:`},
		{"country three digits", func(c *Config) { c.DefaultCountry = "353" }, ""},
		{"trusted proxy", func(c *Config) { c.HTTP.TrustedProxies = []string{"10.0.0.0/8", "10.0.0.0/33"} }, `http.trusted_proxies[1]:`},
		{"not in service kind", func(c *Config) { c.Calls.NotInService = []string{"ss-noservice"} }, `calls.not_in_service[0]: want media such as "sound:ss-noservice"`},
		{"not in service empty", func(c *Config) { c.Calls.NotInService = []string{} }, ""},
		{"tts command empty", func(c *Config) { c.TTS.Command = nil }, `tts.command: must name a program`},
		{"tts command without out", func(c *Config) { c.TTS.Command = []string{"say", "{text}"} }, `tts.command: must contain {out}`},
		{"tts convert without in", func(c *Config) { c.TTS.Convert = []string{"sox", "x", "{out}"} }, `tts.convert: must contain {in}`},
		{"tts convert none", func(c *Config) { c.TTS.Convert = []string{} }, ""},
		{"empty workspace", func(c *Config) { c.Workspace = " " }, `workspace: must not be empty`},
		{"empty flows dir", func(c *Config) { c.FlowsDir = "" }, `flows_dir: must not be empty`},
		{"empty sms technology", func(c *Config) { c.SMS.Technology = "" }, `sms.technology: must not be empty`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			tc.change(c)
			err := c.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("Validate() = %v, want nil", err)
			case tc.want == "":
			case err == nil:
				t.Fatalf("Validate() = nil, want %q", tc.want)
			case !strings.Contains(err.Error(), tc.want):
				t.Fatalf("Validate() = %v, want it to contain %q", err, tc.want)
			default:
				var fe *FieldError
				if !errors.As(err, &fe) {
					t.Fatalf("Validate() = %v, not a *FieldError", err)
				}
			}
		})
	}
}

func TestValidationReportsEveryProblem(t *testing.T) {
	c := Default()
	c.Log.Level = "x"
	c.SMTP.TLS = "x"
	c.Calls.MaxSteps = 0
	err := c.Validate()
	if err == nil {
		t.Fatal("Validate() = nil")
	}
	if n := strings.Count(err.Error(), "\n") + 1; n != 3 {
		t.Fatalf("got %d problems, want 3:\n%v", n, err)
	}
}

func TestExampleFileLoadsToDefaults(t *testing.T) {
	c, err := load(filepath.Join("..", "callflow.example.toml"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := Default(); !reflect.DeepEqual(c, want) {
		t.Fatalf("example file differs from Default():\n got %+v\nwant %+v", c, want)
	}
}

func TestExampleFileDocumentsEveryKey(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("..", "callflow.example.toml"))
	if err != nil {
		t.Fatal(err)
	}
	doc, err := tomlpos.Parse(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range leaves() {
		if _, ok := doc.Index.Lookup(l.key); !ok {
			t.Errorf("example file does not set %s", l.key)
		}
		if !strings.Contains(string(src), "Env: "+l.env+"\n") {
			t.Errorf("example file does not name %s", l.env)
		}
	}
}

func TestEnvKeys(t *testing.T) {
	keys := EnvKeys()
	for _, want := range []string{"CALLFLOW_FLOWS_DIR", "CALLFLOW_ARI_PASSWORD", "CALLFLOW_LOG_LEVEL", "CALLFLOW_HTTP_TRUSTED_PROXIES", "CALLFLOW_WEBHOOKS_HMAC_SECRET"} {
		if !slices.Contains(keys, want) {
			t.Errorf("EnvKeys() lacks %s", want)
		}
	}
	if slices.Contains(keys, EnvConfig) {
		t.Errorf("EnvKeys() lists %s, which is not a key", EnvConfig)
	}
	if n := reflect.TypeFor[Config]().NumField(); len(keys) <= n {
		t.Errorf("EnvKeys() has %d entries, fewer than the sections and top-level keys", len(keys))
	}
	if got := EnvKey("smtp.tls"); got != "CALLFLOW_SMTP_TLS" {
		t.Errorf("EnvKey(smtp.tls) = %q", got)
	}
	if got := EnvKey("smtp"); got != "" {
		t.Errorf("EnvKey(smtp) = %q, want none", got)
	}
}

func TestEveryKeyHasAWorkingOverride(t *testing.T) {
	// Setting each variable to a value of the right kind must change its key,
	// so a new field cannot end up with a variable that does nothing.
	for _, l := range leaves() {
		value := map[reflect.Kind]string{reflect.String: "x", reflect.Bool: "false", reflect.Int: "2", reflect.Slice: "a,b"}[l.typ.Kind()]
		if l.typ == durationType {
			value = "17s"
		}
		c := Default()
		before := reflect.ValueOf(c).Elem().FieldByIndex(l.index).Interface()
		if err := c.ApplyEnv([]string{l.env + "=" + value}); err != nil {
			t.Errorf("%s: %v", l.env, err)
			continue
		}
		if after := reflect.ValueOf(c).Elem().FieldByIndex(l.index).Interface(); reflect.DeepEqual(before, after) {
			t.Errorf("%s=%s left %s at %v", l.env, value, l.key, before)
		}
	}
}

func TestRedacted(t *testing.T) {
	c := Default()
	c.ARI.Password = "ari-pw"
	c.ARI.URL = "http://user:url-pw@pbx:8088/ari"
	c.SMTP.Password = "smtp-pw"
	c.Webhooks.HMACSecret = "hmac"
	c.HTTP.SessionKey = "session"
	c.HTTP.TrustedProxies = []string{"10.0.0.1"}

	r := c.Redacted()
	for _, tc := range []struct {
		name      string
		got, want string
	}{
		{"ari.password", r.ARI.Password, "****"},
		{"smtp.password", r.SMTP.Password, "****"},
		{"webhooks.hmac_secret", r.Webhooks.HMACSecret, "****"},
		{"http.session_key", r.HTTP.SessionKey, "****"},
		{"ari.url", r.ARI.URL, "http://user:****@pbx:8088/ari"},
		{"unset secret stays empty", r.SMTP.Username, ""},
		{"plain value kept", r.ARI.Username, "callflow"},
		{"original untouched", c.ARI.Password, "ari-pw"},
		{"original url untouched", c.ARI.URL, "http://user:url-pw@pbx:8088/ari"},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %q, want %q", tc.name, tc.got, tc.want)
		}
	}
	if d := Default().Redacted(); d.ARI.Password != "" {
		t.Errorf("empty password redacted to %q; an unset secret should show as unset", d.ARI.Password)
	}
	r.HTTP.TrustedProxies[0] = "changed"
	if c.HTTP.TrustedProxies[0] != "10.0.0.1" {
		t.Error("changing the redacted copy's list changed the original")
	}
}

func TestTrustedPrefixes(t *testing.T) {
	h := HTTP{TrustedProxies: []string{"10.1.2.3/8", "192.168.1.10", "::1"}}
	var got []string
	for _, p := range h.TrustedPrefixes() {
		got = append(got, p.String())
	}
	if want := []string{"10.0.0.0/8", "192.168.1.10/32", "::1/128"}; !slices.Equal(got, want) {
		t.Fatalf("TrustedPrefixes() = %v, want %v", got, want)
	}
}
