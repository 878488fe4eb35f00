package procs

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// helperEnv makes the test binary one of the processes below instead of
// running the tests.
const helperEnv = "CORVID_PROCS_HELPER"

func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "hog":
		hog()
		return
	case "saturated":
		scaled(true)
		return
	case "light":
		scaled(false)
		return
	case "follow":
		follow()
		return
	}
	os.Exit(m.Run())
}

// hog keeps three threads busy until its standard input closes, for a
// minute at most.
func hog() {
	runtime.GOMAXPROCS(3)
	closed := make(chan struct{})
	go func() { bufio.NewReader(os.Stdin).ReadByte(); close(closed) }()
	stop := spin(3, 0)
	select {
	case <-closed:
	case <-time.After(time.Minute):
	}
	stop()
}

// spin keeps n goroutines busy, each sleeping pause every 100 steps when
// pause is not 0, until the function it returns is called, which waits
// for them to stop.
func spin(n int, pause time.Duration) (stop func()) {
	done := make(chan struct{})
	var work sync.WaitGroup
	for range n {
		work.Add(1)
		go func() {
			defer work.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				for i := 0; i < 1e4; i++ {
					_ = strconv.Itoa(i)
					if pause > 0 && i%100 == 0 {
						time.Sleep(pause)
					}
				}
			}
		}()
	}
	return func() { close(done); work.Wait() }
}

// scaled runs a Scaler for up to 2 Ps, with goroutines that keep every
// P busy (saturate: eight, a backlog of seven on one P) or one that wakes
// every 200 µs to do a little work, and prints the most Ps it held:
// within 10 s when saturated, over 3 s when light.
func scaled(saturate bool) {
	if saturate {
		scaledN(8, 0, 10*time.Second)
	} else {
		scaledN(1, 200*time.Microsecond, 3*time.Second)
	}
}

// scaledN runs a Scaler for up to 2 Ps with spinners goroutines, each
// sleeping pause every 100 steps (0: never), and prints the most Ps it
// held within hold.
func scaledN(spinners int, pause, hold time.Duration) {
	s := New(2, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx) }()
	stop := spin(spinners, pause)
	most := 0
	for deadline := time.Now().Add(hold); time.Now().Before(deadline) && most < 2; time.Sleep(Interval / 2) {
		most = max(most, runtime.GOMAXPROCS(0))
	}
	stop()
	cancel()
	<-done
	fmt.Println("most", most)
}

// follow runs a Scaler following the runtime's default while goroutines
// keep every P busy; once it holds them all it prints "up" and waits for
// a line on its standard input (its CPUs changed), then prints the Ps it
// holds once it holds fewer, or after 15 s.
func follow() {
	s := New(0, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx) }()
	stop := func() {}
	defer func() { stop(); cancel(); <-done }()
	all := runtime.NumCPU()
	deadline := time.Now().Add(10 * time.Second)
	// Run starts on one P; the busy goroutines make it take the others.
	for _, want := range []int{1, all} {
		for runtime.GOMAXPROCS(0) != want {
			if time.Now().After(deadline) {
				fmt.Println("stayed at", runtime.GOMAXPROCS(0), "want", want)
				return
			}
			time.Sleep(Interval / 10)
		}
		if want == 1 {
			stop = spin(4, 0)
		}
	}
	fmt.Println("up")
	bufio.NewReader(os.Stdin).ReadString('\n')
	for deadline := time.Now().Add(15 * time.Second); runtime.GOMAXPROCS(0) == all && time.Now().Before(deadline); {
		time.Sleep(Interval / 2)
	}
	fmt.Println("holds", runtime.GOMAXPROCS(0))
}

// TestRunFollowsCPUs runs a busy process on all CPUs and then leaves it
// one: the runtime would lower GOMAXPROCS to 1, but setting GOMAXPROCS
// stops it from following, so the Scaler must.
func TestRunFollowsCPUs(t *testing.T) {
	followCPUs(t)
}

// TestRunFollowsCPUsIgnoredEnv is TestRunFollowsCPUs with a GOMAXPROCS
// environment variable the runtime ignores (not a positive number): the
// runtime then follows the CPUs, and so must the Scaler.
func TestRunFollowsCPUsIgnoredEnv(t *testing.T) {
	for _, v := range []string{"0", "auto"} {
		t.Run(v, func(t *testing.T) { followCPUs(t, "GOMAXPROCS="+v) })
	}
}

// followCPUs runs the follow process with env added to its environment,
// and checks that it holds one P once it is left one CPU.
func followCPUs(t *testing.T, env ...string) {
	taskset, err := exec.LookPath("taskset")
	if err != nil {
		t.Skip("needs taskset")
	}
	if os.Getenv("GOMAXPROCS") != "" || runtime.NumCPU() < 2 {
		t.Skip("needs GOMAXPROCS unset and 2 CPUs or more")
	}
	cpu, err := firstCPU()
	if err != nil {
		t.Skipf("cannot read this process's CPUs: %v", err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), env...), helperEnv+"=follow")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { stdin.Close(); cmd.Process.Kill(); cmd.Wait() }()
	out := bufio.NewReader(stdout)
	if l, _ := out.ReadString('\n'); l != "up\n" {
		t.Fatalf("busy process: %q, want up", l)
	}
	if b, err := exec.Command(taskset, "-a", "-p", "-c", cpu, strconv.Itoa(cmd.Process.Pid)).CombinedOutput(); err != nil {
		t.Fatalf("taskset: %v: %s", err, b)
	}
	stdin.Write([]byte("\n"))
	if l, _ := out.ReadString('\n'); l != "holds 1\n" {
		t.Errorf("on one CPU: %q, want holds 1", l)
	}
}

// busyCPU runs the test binary as role on one CPU beside another process
// whose three threads keep that CPU busy, and returns the most Ps it held.
func busyCPU(t *testing.T, role string) string {
	t.Helper()
	taskset, err := exec.LookPath("taskset")
	if err != nil {
		t.Skip("needs taskset")
	}
	cpu, err := firstCPU()
	if err != nil {
		t.Skipf("cannot read this process's CPUs: %v", err)
	}
	run := func(role string) *exec.Cmd {
		cmd := exec.Command(taskset, "-c", cpu, os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), helperEnv+"="+role)
		cmd.Stderr = os.Stderr
		return cmd
	}
	h := run("hog")
	stdin, err := h.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { stdin.Close(); h.Wait() }()
	out, err := run(role).Output()
	if err != nil {
		t.Fatalf("%s process: %v", role, err)
	}
	return strings.TrimSpace(string(out))
}

// TestRunTakesProcsOnBusyMachine runs a process whose one P is always
// busy on the same CPU as another process's three busy threads: the
// process then gets about a quarter of the CPU, below upAt, yet it needs a
// second P, which it takes since its goroutines queue for the one.
func TestRunTakesProcsOnBusyMachine(t *testing.T) {
	if got := busyCPU(t, "saturated"); got != "most 2" {
		t.Errorf("a process with one busy P sharing its CPU: %q Ps at most, want 2", got)
	}
}

// TestRunLightLoadOnBusyMachine runs a process with a light load, whose
// thread sleeps and wakes thousands of times a second, on a CPU kept
// busy by another: each wake-up waits for the CPU, which a second P
// would not shorten, so it stays on one.
func TestRunLightLoadOnBusyMachine(t *testing.T) {
	if got := busyCPU(t, "light"); got != "most 1" {
		t.Errorf("a light load sharing its CPU: %q Ps at most, want 1", got)
	}
}

// firstCPU is the first CPU this process may run on.
func firstCPU() (string, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "", err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if list, ok := strings.CutPrefix(l, "Cpus_allowed_list:"); ok {
			first, _, _ := strings.Cut(strings.TrimSpace(list), ",")
			first, _, _ = strings.Cut(first, "-")
			if _, err := strconv.Atoi(first); err != nil {
				return "", fmt.Errorf("Cpus_allowed_list %q", list)
			}
			return first, nil
		}
	}
	return "", fmt.Errorf("no Cpus_allowed_list")
}
