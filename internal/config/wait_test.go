package config

import (
	"testing"
	"time"
)

// TestLoadWait: TOKENLEDGER_REDIS_WAIT_REPLICAS and _WAIT_TIMEOUT are read
// for the Redis store, with the timeout defaulting to half the database
// timeout; unset (or 0) leaves both at 0.
func TestLoadWait(t *testing.T) {
	const url = "redis://127.0.0.1:6379"
	tests := []struct {
		name    string
		env     map[string]string
		n       int
		timeout time.Duration
	}{
		{"unset", map[string]string{"REDIS_URL": url}, 0, 0},
		{"zero", map[string]string{"REDIS_URL": url, "TOKENLEDGER_REDIS_WAIT_REPLICAS": "0"}, 0, 0},
		{"default timeout", map[string]string{"REDIS_URL": url, "TOKENLEDGER_REDIS_WAIT_REPLICAS": " 1 "}, 1, time.Second},
		{"half of the db timeout", map[string]string{"REDIS_URL": url, "TOKENLEDGER_REDIS_WAIT_REPLICAS": "2", "TOKENLEDGER_DB_TIMEOUT": "301ms"}, 2, 150 * time.Millisecond},
		{"timeout", map[string]string{"REDIS_CLUSTER_NODES": "127.0.0.1:7000", "TOKENLEDGER_REDIS_WAIT_REPLICAS": "16", "TOKENLEDGER_REDIS_WAIT_TIMEOUT": "250ms"}, 16, 250 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Load(env(tc.env))
			if err != nil {
				t.Fatal(err)
			}
			eq(t, "RedisWaitReplicas", c.RedisWaitReplicas, tc.n)
			eq(t, "RedisWaitTimeout", c.RedisWaitTimeout, tc.timeout)
		})
	}
}

// TestLoadWaitErrors: each bad value is refused with one sentence naming
// the variable.
func TestLoadWaitErrors(t *testing.T) {
	const url = "redis://127.0.0.1:6379"
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"not a number", map[string]string{"REDIS_URL": url, "TOKENLEDGER_REDIS_WAIT_REPLICAS": "one"},
			`TOKENLEDGER_REDIS_WAIT_REPLICAS must be a whole number of replicas from 0 to 16, not "one"`},
		{"negative", map[string]string{"REDIS_URL": url, "TOKENLEDGER_REDIS_WAIT_REPLICAS": "-1"},
			`TOKENLEDGER_REDIS_WAIT_REPLICAS must be a whole number of replicas from 0 to 16, not "-1"`},
		{"signed", map[string]string{"REDIS_URL": url, "TOKENLEDGER_REDIS_WAIT_REPLICAS": "+1"},
			`TOKENLEDGER_REDIS_WAIT_REPLICAS must be a whole number of replicas from 0 to 16, not "+1"`},
		{"too many", map[string]string{"REDIS_URL": url, "TOKENLEDGER_REDIS_WAIT_REPLICAS": "17"},
			`TOKENLEDGER_REDIS_WAIT_REPLICAS must be a whole number of replicas from 0 to 16, not "17"`},
		{"file store", map[string]string{"TOKENLEDGER_REDIS_WAIT_REPLICAS": "1"},
			"TOKENLEDGER_REDIS_WAIT_REPLICAS applies to the Redis store only (REDIS_URL, KV_URL or REDIS_CLUSTER_NODES), and the store is file"},
		{"REST store", map[string]string{"KV_REST_API_URL": "https://kv.example.com", "KV_REST_API_TOKEN": "t", "TOKENLEDGER_REDIS_WAIT_REPLICAS": "1"},
			"TOKENLEDGER_REDIS_WAIT_REPLICAS applies to the Redis store only (REDIS_URL, KV_URL or REDIS_CLUSTER_NODES), and the store is kv-rest"},
		{"timeout without replicas", map[string]string{"REDIS_URL": url, "TOKENLEDGER_REDIS_WAIT_TIMEOUT": "1s"},
			"TOKENLEDGER_REDIS_WAIT_TIMEOUT is set but TOKENLEDGER_REDIS_WAIT_REPLICAS is not (or is 0); set the number of replicas too, or neither"},
		{"timeout not a duration", map[string]string{"REDIS_URL": url, "TOKENLEDGER_REDIS_WAIT_REPLICAS": "1", "TOKENLEDGER_REDIS_WAIT_TIMEOUT": "500"},
			`TOKENLEDGER_REDIS_WAIT_TIMEOUT must be a whole number of milliseconds from 1ms to less than TOKENLEDGER_DB_TIMEOUT (2s), such as 500ms, not "500"`},
		{"timeout not below the db timeout", map[string]string{"REDIS_URL": url, "TOKENLEDGER_REDIS_WAIT_REPLICAS": "1", "TOKENLEDGER_REDIS_WAIT_TIMEOUT": "2s"},
			`TOKENLEDGER_REDIS_WAIT_TIMEOUT must be a whole number of milliseconds from 1ms to less than TOKENLEDGER_DB_TIMEOUT (2s), such as 500ms, not "2s"`},
		{"timeout below a millisecond", map[string]string{"REDIS_URL": url, "TOKENLEDGER_REDIS_WAIT_REPLICAS": "1", "TOKENLEDGER_REDIS_WAIT_TIMEOUT": "1500us"},
			`TOKENLEDGER_REDIS_WAIT_TIMEOUT must be a whole number of milliseconds from 1ms to less than TOKENLEDGER_DB_TIMEOUT (2s), such as 500ms, not "1500us"`},
		{"timeout zero", map[string]string{"REDIS_URL": url, "TOKENLEDGER_REDIS_WAIT_REPLICAS": "1", "TOKENLEDGER_REDIS_WAIT_TIMEOUT": "0s"},
			`TOKENLEDGER_REDIS_WAIT_TIMEOUT must be a whole number of milliseconds from 1ms to less than TOKENLEDGER_DB_TIMEOUT (2s), such as 500ms, not "0s"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Load(env(tc.env))
			if err == nil {
				t.Fatalf("Load = %+v, want error %q", c, tc.want)
			}
			if got := err.Error(); got != tc.want {
				t.Errorf("error =\n%q\nwant\n%q", got, tc.want)
			}
		})
	}
}
