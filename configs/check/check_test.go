// Package check validates the Kubernetes manifest in configs/ against the
// Kubernetes API types. It is a module of its own so that trawl itself does
// not depend on the Kubernetes libraries; .ci/run runs it.
package check

import (
	"bytes"
	"os"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// TestIndexedJob decodes every document strictly (an unknown or misspelled
// field is an error) and checks what the shards depend on.
func TestIndexedJob(t *testing.T) {
	data, err := os.ReadFile("../k8s-indexed-job.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var job *batchv1.Job
	for _, doc := range bytes.Split(data, []byte("\n---\n")) {
		var meta struct{ Kind string }
		if err := yaml.Unmarshal(doc, &meta); err != nil {
			t.Fatal(err)
		}
		var into any
		switch meta.Kind {
		case "Job":
			job = &batchv1.Job{}
			into = job
		case "ConfigMap":
			into = &corev1.ConfigMap{}
		case "PersistentVolumeClaim":
			into = &corev1.PersistentVolumeClaim{}
		default:
			t.Fatalf("unexpected kind %q", meta.Kind)
		}
		if err := yaml.UnmarshalStrict(doc, into); err != nil {
			t.Fatalf("%s: %v", meta.Kind, err)
		}
	}
	if job == nil {
		t.Fatal("no Job")
	}
	s := job.Spec
	if s.CompletionMode == nil || *s.CompletionMode != batchv1.IndexedCompletion {
		t.Fatal("not an Indexed Job")
	}
	if s.Completions == nil || s.BackoffLimitPerIndex == nil || s.Template.Spec.RestartPolicy != corev1.RestartPolicyNever {
		t.Fatal("completions, backoffLimitPerIndex and restartPolicy Never are needed")
	}
	args := strings.Join(s.Template.Spec.Containers[0].Args, " ")
	n := *s.Completions
	// The pod finds its index in JOB_COMPLETION_INDEX, but not the Job's
	// completions: the count after auto/ must be spec.completions, or
	// shards would be missed or fetched twice.
	for _, want := range []string{"--shard=auto/" + itoa(n), "--resume", "--output=/out/shard-{shard}.jsonl"} {
		if !strings.Contains(args, want) {
			t.Errorf("args %q lack %q", args, want)
		}
	}
	if strings.Contains(args, "$(JOB_COMPLETION_INDEX)") {
		t.Errorf("args %q spell the index themselves; --shard=auto/N and {shard} take it from the pod", args)
	}
}

func itoa(n int32) string {
	var b []byte
	for {
		b = append([]byte{byte('0' + n%10)}, b...)
		n /= 10
		if n == 0 {
			return string(b)
		}
	}
}
