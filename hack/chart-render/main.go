// chart-render renders a Helm chart's templates the way `helm template` does, for machines without Helm (it is not
// packaged for Debian): Go's text/template (Helm's engine) with the few Helm functions Hull's chart uses, values.yaml
// deep-merged with -f files, and .Release/.Chart. A function the chart uses that is not here fails the rendering, so
// the chart stays within what this renderer and Helm render the same way.
//
// usage: chart-render [-name RELEASE] [-namespace NS] [-f values.yaml]... CHART_DIR
//
// Built in GOPATH mode against Debian's golang-gopkg-yaml.v3-dev (hack/install-deps.sh), since there is no module proxy.
package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/template"

	"gopkg.in/yaml.v3"
)

type valueFiles []string

func (v *valueFiles) String() string     { return strings.Join(*v, ",") }
func (v *valueFiles) Set(s string) error { *v = append(*v, s); return nil }

func main() {
	name := flag.String("name", "hull", "release name")
	namespace := flag.String("namespace", "default", "release namespace")
	var files valueFiles
	flag.Var(&files, "f", "values file merged over the chart's values.yaml (repeatable)")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: chart-render [-name RELEASE] [-namespace NS] [-f values.yaml]... CHART_DIR")
		os.Exit(2)
	}
	out, err := render(flag.Arg(0), *name, *namespace, files)
	if err != nil {
		fmt.Fprintln(os.Stderr, "chart-render:", err)
		os.Exit(1)
	}
	os.Stdout.WriteString(out)
}

func render(chartDir, name, namespace string, files []string) (string, error) {
	chart, err := readYaml(filepath.Join(chartDir, "Chart.yaml"))
	if err != nil {
		return "", err
	}
	values, err := readYaml(filepath.Join(chartDir, "values.yaml"))
	if err != nil {
		return "", err
	}
	for _, f := range files {
		override, err := readYaml(f)
		if err != nil {
			return "", err
		}
		values = merge(values, override)
	}
	chartName, _ := chart["name"].(string)
	data := map[string]interface{}{
		"Values":  values,
		"Release": map[string]interface{}{"Name": name, "Namespace": namespace, "Service": "Helm", "IsInstall": true},
		"Chart":   map[string]interface{}{"Name": chartName, "Version": chart["version"], "AppVersion": chart["appVersion"]},
	}

	paths, err := filepath.Glob(filepath.Join(chartDir, "templates", "*"))
	if err != nil {
		return "", err
	}
	sort.Strings(paths)
	root := template.New(chartName).Option("missingkey=zero")
	root.Funcs(funcs(root))
	for _, path := range paths {
		text, err := os.ReadFile(path)
		if err != nil {
			return "", err
		}
		if _, err := root.New(chartName + "/templates/" + filepath.Base(path)).Parse(string(text)); err != nil {
			return "", err
		}
	}
	var docs []document
	for _, path := range paths {
		base := filepath.Base(path)
		if strings.HasPrefix(base, "_") || !(strings.HasSuffix(base, ".yaml") || strings.HasSuffix(base, ".yml")) {
			continue
		}
		var buf bytes.Buffer
		if err := root.ExecuteTemplate(&buf, chartName+"/templates/"+base, data); err != nil {
			return "", err
		}
		for _, part := range strings.Split("\n"+buf.String(), "\n---") {
			body := strings.TrimSpace(part)
			if body == "" {
				continue
			}
			var head struct{ Kind string }
			if err := yaml.Unmarshal([]byte(body), &head); err != nil {
				return "", fmt.Errorf("%s renders invalid YAML: %w\n%s", base, err, body)
			}
			if head.Kind == "" {
				continue // only comments
			}
			docs = append(docs, document{source: chartName + "/templates/" + base, kind: head.Kind, body: body})
		}
	}
	// helm template prints objects in the order helm install creates them (releaseutil.InstallOrder).
	sort.SliceStable(docs, func(i, j int) bool { return rank(docs[i].kind) < rank(docs[j].kind) })
	var out strings.Builder
	for _, d := range docs {
		fmt.Fprintf(&out, "---\n# Source: %s\n%s\n", d.source, d.body)
	}
	return out.String(), nil
}

type document struct{ source, kind, body string }

var installOrder = []string{"PriorityClass", "Namespace", "NetworkPolicy", "ResourceQuota", "LimitRange", "PodSecurityPolicy",
	"PodDisruptionBudget", "ServiceAccount", "Secret", "SecretList", "ConfigMap", "StorageClass", "PersistentVolume",
	"PersistentVolumeClaim", "CustomResourceDefinition", "ClusterRole", "ClusterRoleList", "ClusterRoleBinding",
	"ClusterRoleBindingList", "Role", "RoleList", "RoleBinding", "RoleBindingList", "Service", "DaemonSet", "Pod",
	"ReplicationController", "ReplicaSet", "Deployment", "HorizontalPodAutoscaler", "StatefulSet", "Job", "CronJob",
	"IngressClass", "Ingress", "APIService"}

func rank(kind string) int {
	for i, k := range installOrder {
		if k == kind {
			return i
		}
	}
	return len(installOrder)
}

func readYaml(path string) (map[string]interface{}, error) {
	text, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	m := map[string]interface{}{}
	if err := yaml.Unmarshal(text, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// merge is Helm's coalescing of values: maps merge key by key, anything else replaces, null removes the key.
func merge(base, override map[string]interface{}) map[string]interface{} {
	out := map[string]interface{}{}
	for k, v := range base {
		out[k] = v
	}
	for k, v := range override {
		if v == nil {
			delete(out, k)
			continue
		}
		if om, ok := v.(map[string]interface{}); ok {
			if bm, ok := out[k].(map[string]interface{}); ok {
				out[k] = merge(bm, om)
				continue
			}
		}
		out[k] = v
	}
	return out
}

// funcs are the Helm (and Sprig) functions the chart uses, with Helm's behaviour.
func funcs(root *template.Template) template.FuncMap {
	return template.FuncMap{
		"toYaml": func(v interface{}) (string, error) {
			var buf bytes.Buffer
			enc := yaml.NewEncoder(&buf)
			enc.SetIndent(2)
			if err := enc.Encode(v); err != nil {
				return "", err
			}
			return strings.TrimSuffix(buf.String(), "\n"), nil
		},
		"indent":  indent,
		"nindent": func(n int, s string) string { return "\n" + indent(n, s) },
		"quote": func(v interface{}) string {
			if v == nil {
				return `""`
			}
			return fmt.Sprintf("%q", fmt.Sprint(v))
		},
		"default": func(d interface{}, v ...interface{}) interface{} {
			if len(v) == 0 || empty(v[0]) {
				return d
			}
			return v[0]
		},
		"required": func(msg string, v interface{}) (interface{}, error) {
			if empty(v) {
				return nil, fmt.Errorf("%s", msg)
			}
			return v, nil
		},
		"trunc": func(n int, s string) string {
			if len(s) > n {
				return s[:n]
			}
			return s
		},
		"trimSuffix": func(suffix, s string) string { return strings.TrimSuffix(s, suffix) },
		"sha256sum": func(s string) string {
			sum := sha256.Sum256([]byte(s))
			return hex.EncodeToString(sum[:])
		},
		"include": func(name string, data interface{}) (string, error) {
			var buf bytes.Buffer
			err := root.ExecuteTemplate(&buf, name, data)
			return buf.String(), err
		},
	}
}

func indent(n int, s string) string {
	pad := strings.Repeat(" ", n)
	return pad + strings.ReplaceAll(s, "\n", "\n"+pad)
}

func empty(v interface{}) bool {
	switch t := v.(type) {
	case nil:
		return true
	case string:
		return t == ""
	case bool:
		return !t
	case int:
		return t == 0
	case float64:
		return t == 0
	case []interface{}:
		return len(t) == 0
	case map[string]interface{}:
		return len(t) == 0
	}
	return false
}
