package protocol

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// The ExecCredential API versions kubectl and client-go speak.
const (
	ExecAPIV1      = "client.authentication.k8s.io/v1"
	ExecAPIV1beta1 = "client.authentication.k8s.io/v1beta1"
)

// MaxExecInfoBytes bounds KUBERNETES_EXEC_INFO. It carries the cluster's CA
// bundle, a few kilobytes; Linux caps one environment string at 128 KiB.
const MaxExecInfoBytes = 1 << 20

// ExecInfo is what kubectl tells the plugin through KUBERNETES_EXEC_INFO.
type ExecInfo struct {
	APIVersion  string // ExecAPIV1 or ExecAPIV1beta1
	Interactive bool
	Cluster     ClusterConfig // from spec.cluster.config (with provideClusterInfo)
}

// ClusterConfig holds the settings a kubeconfig may attach to a cluster in its
// client.authentication.k8s.io/exec extension.
type ClusterConfig struct {
	Profile string
	Tenant  string
	Scopes  []string
}

// execInfoJSON is the part of an ExecCredential the helper reads; client-go
// sends more (server, CA data), which is ignored.
type execInfoJSON struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Spec       struct {
		Interactive bool `json:"interactive"`
		Cluster     *struct {
			Config json.RawMessage `json:"config"`
		} `json:"cluster"`
	} `json:"spec"`
}

type execCredentialJSON struct {
	APIVersion string               `json:"apiVersion"`
	Kind       string               `json:"kind"`
	Status     execCredentialStatus `json:"status"`
}

type execCredentialStatus struct {
	Token               string `json:"token"`
	ExpirationTimestamp string `json:"expirationTimestamp,omitempty"`
}

// ParseExecInfo parses the value of KUBERNETES_EXEC_INFO. An empty string
// means the variable is absent (an old kubectl, or a manual run): v1, not
// interactive.
func ParseExecInfo(s string) (ExecInfo, error) {
	if s == "" {
		return ExecInfo{APIVersion: ExecAPIV1}, nil
	}
	if len(s) > MaxExecInfoBytes {
		return ExecInfo{}, fmt.Errorf("KUBERNETES_EXEC_INFO is longer than %d bytes", MaxExecInfoBytes)
	}
	var raw execInfoJSON
	if err := json.Unmarshal([]byte(s), &raw); err != nil {
		return ExecInfo{}, fmt.Errorf("failed to parse KUBERNETES_EXEC_INFO: %w", err)
	}
	if !knownExecAPI(raw.APIVersion) {
		return ExecInfo{}, fmt.Errorf("KUBERNETES_EXEC_INFO has apiVersion %q; supported: %s, %s", raw.APIVersion, ExecAPIV1, ExecAPIV1beta1)
	}
	if raw.Kind != "ExecCredential" {
		return ExecInfo{}, fmt.Errorf("KUBERNETES_EXEC_INFO has kind %q, want ExecCredential", raw.Kind)
	}
	info := ExecInfo{APIVersion: raw.APIVersion, Interactive: raw.Spec.Interactive}
	if raw.Spec.Cluster != nil && len(raw.Spec.Cluster.Config) > 0 && !isNull(raw.Spec.Cluster.Config) {
		c, err := parseClusterConfig(raw.Spec.Cluster.Config)
		if err != nil {
			return ExecInfo{}, fmt.Errorf("KUBERNETES_EXEC_INFO spec.cluster.config: %w", err)
		}
		info.Cluster = c
	}
	return info, nil
}

// parseClusterConfig reads the three keys the helper knows. Other keys are
// left alone: the extension may be shared with other tools.
func parseClusterConfig(raw json.RawMessage) (ClusterConfig, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return ClusterConfig{}, errors.New("not a JSON object")
	}
	var c ClusterConfig
	if err := decodeString(fields, "profile", &c.Profile); err != nil {
		return ClusterConfig{}, err
	}
	if err := decodeString(fields, "tenant", &c.Tenant); err != nil {
		return ClusterConfig{}, err
	}
	if raw, ok := fields["scopes"]; ok && !isNull(raw) {
		scopes, err := decodeScopes(raw)
		var one string
		if err != nil && json.Unmarshal(raw, &one) == nil {
			// A kubeconfig author may well write scopes as a plain YAML
			// string; read it as OAuth does, space-separated.
			scopes, err = nil, nil
			if f := strings.Fields(one); len(f) > 0 {
				scopes = f
			}
		}
		if err != nil {
			return ClusterConfig{}, err
		}
		c.Scopes = scopes
	}
	return c, nil
}

// WriteExecCredential writes the ExecCredential answer in apiVersion, which
// must be the one kubectl sent. A zero expiry leaves expirationTimestamp out,
// which client-go reads as "valid until a 401".
func WriteExecCredential(w io.Writer, apiVersion, token string, expiry time.Time) error {
	if !knownExecAPI(apiVersion) {
		return fmt.Errorf("unsupported ExecCredential apiVersion %q", apiVersion)
	}
	if err := checkToken(token); err != nil {
		return err
	}
	st := execCredentialStatus{Token: token}
	if !expiry.IsZero() {
		// client-go renews only once now passes this instant, with no skew,
		// so round down rather than promise a second the token lacks.
		st.ExpirationTimestamp = expiry.UTC().Format(rfc3339UTC)
	}
	return writeJSONLine(w, execCredentialJSON{
		APIVersion: apiVersion,
		Kind:       "ExecCredential",
		Status:     st,
	})
}

func knownExecAPI(v string) bool {
	return v == ExecAPIV1 || v == ExecAPIV1beta1
}
