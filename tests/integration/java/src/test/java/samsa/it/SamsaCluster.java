package samsa.it;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import java.util.stream.IntStream;
import java.util.stream.Stream;

/**
 * A local cluster of samsa-server nodes started with {@code samsa cluster up} (docs/cli.md,
 * "Local cluster") in a fresh temporary dir, on a random base port below the ephemeral
 * range (another one if a port is taken). Node I serves clients on base + 10*(I-1).
 *
 * <p>The nodes run detached, in their own sessions, so they do not die with the test JVM:
 * {@link #close} runs {@code cluster down --purge} and then SIGKILLs any node still
 * listed in DIR/pids; a shutdown hook closes whatever is still open; and the nodes and
 * dirs of a JVM that was itself killed are removed by the next run (each dir names its
 * JVM in an "owner" file).
 */
final class SamsaCluster implements AutoCloseable {
    private static final String DIR_PREFIX = "samsa-jcluster-";
    private static final long UP_TIMEOUT_MS = 60_000;
    private static final long DOWN_TIMEOUT_MS = 40_000;
    private static final int PORT_TRIES = 5;
    private static final Pattern CONTROLLER = Pattern.compile("Active controller: node (\\d+)");
    private static final List<SamsaCluster> LIVE = new ArrayList<>();

    static {
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            List<SamsaCluster> left;
            synchronized (LIVE) {
                left = new ArrayList<>(LIVE);
            }
            for (SamsaCluster c : left) {
                c.close();
            }
        }, "samsa-cluster-reaper"));
        removeOrphans();
    }

    /** Stops the nodes and removes the dirs of test JVMs that are no longer alive. */
    private static void removeOrphans() {
        Path tmp = Paths.get(System.getProperty("java.io.tmpdir"));
        try (Stream<Path> dirs = Files.list(tmp)) {
            dirs.filter(d -> d.getFileName().toString().startsWith(DIR_PREFIX)).forEach(d -> {
                try {
                    long pid = Long.parseLong(Files.readString(d.resolve("owner")).trim());
                    if (ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false)) {
                        return;
                    }
                    new SamsaCluster(d, 0, 0).close();
                } catch (IOException | RuntimeException e) {
                    // not one of ours, or not readable: leave it
                }
            });
        } catch (IOException e) {
            System.err.println("cannot list " + tmp + ": " + e);
        }
    }

    private final Path tempDir;
    private final Path dir;
    private final int nodes;
    private final int basePort;
    private int initialController = -1;

    private SamsaCluster(Path tempDir, int nodes, int basePort) {
        this.tempDir = tempDir;
        this.dir = tempDir.resolve("cluster");
        this.nodes = nodes;
        this.basePort = basePort;
    }

    /** The samsa CLI: -Dsamsa.cli, else $SAMSA_CLI, else tools/samsa beside samsa-server. */
    static Path cliBinary() {
        String s = System.getProperty("samsa.cli", "");
        if (s.isEmpty()) {
            s = System.getenv().getOrDefault("SAMSA_CLI", "");
        }
        Path p = s.isEmpty() ? SamsaBroker.serverBinary().resolveSibling("tools").resolve("samsa") : Paths.get(s);
        if (!Files.isExecutable(p)) {
            throw new IllegalStateException("samsa CLI " + p + " is not an executable file (set SAMSA_CLI)");
        }
        return p;
    }

    /** Runs {@code samsa cluster up --nodes n} and returns once it reported the cluster ready. */
    static SamsaCluster up(int n) throws Exception {
        Path tmp = Files.createTempDirectory(DIR_PREFIX);
        Files.writeString(tmp.resolve("owner"), ProcessHandle.current().pid() + "\n");
        String lastOutput = "";
        for (int attempt = 0; attempt < PORT_TRIES; attempt++) {
            int base = 20_000 + ThreadLocalRandom.current().nextInt(1000) * 10;
            SamsaCluster c = new SamsaCluster(tmp, n, base);
            synchronized (LIVE) {
                LIVE.add(c);
            }
            String out;
            try {
                out = c.cli(UP_TIMEOUT_MS, "up", "--nodes", Integer.toString(n), "--dir", c.dir.toString(),
                        "--base-port", Integer.toString(base), "--server", SamsaBroker.serverBinary().toString());
            } catch (Throwable t) {
                c.close();
                throw t;
            }
            Matcher m = CONTROLLER.matcher(out);
            if (out.contains("bootstrap.servers=" + c.bootstrapAll()) && m.find()) {
                c.initialController = Integer.parseInt(m.group(1));
                return c;
            }
            lastOutput = out;
            boolean portTaken = out.contains("is not free") || out.contains("Address already in use");
            c.stopNodes();
            synchronized (LIVE) {
                LIVE.remove(c);
            }
            removeTree(c.dir);
            if (!portTaken) {
                break;
            }
        }
        removeTree(tmp);
        throw new IllegalStateException("samsa cluster up failed:\n" + lastOutput);
    }

    /** Runs {@code samsa cluster ARGS...}; returns its stdout and stderr. */
    private String cli(long timeoutMs, String... args) throws Exception {
        List<String> cmd = new ArrayList<>(List.of(cliBinary().toString(), "cluster"));
        cmd.addAll(List.of(args));
        Path out = Files.createTempFile(tempDir, "cli-", ".out");
        Process p = new ProcessBuilder(cmd)
                .redirectInput(ProcessBuilder.Redirect.from(Path.of("/dev/null").toFile()))
                .redirectErrorStream(true)
                .redirectOutput(out.toFile())
                .start();
        if (!p.waitFor(timeoutMs, TimeUnit.MILLISECONDS)) {
            p.destroyForcibly();
            p.waitFor(5, TimeUnit.SECONDS);
            return Files.readString(out) + "\n(" + String.join(" ", cmd) + ": no exit within " + timeoutMs + " ms)";
        }
        return Files.readString(out);
    }

    int nodes() {
        return nodes;
    }

    /** The node the cluster named active controller when it came up. */
    int initialController() {
        return initialController;
    }

    String bootstrap(int node) {
        return "127.0.0.1:" + (basePort + 10 * (node - 1));
    }

    String bootstrapAll() {
        return IntStream.rangeClosed(1, nodes).mapToObj(this::bootstrap).collect(Collectors.joining(","));
    }

    /** Node {@code node}'s pid as DIR/pids lists it (one a line, node 1 first). */
    long pid(int node) throws IOException {
        List<String> lines = Files.readAllLines(dir.resolve("pids"));
        return Long.parseLong(lines.get(node - 1).trim());
    }

    /** Whether pid is a samsa-server of this cluster's dir (its command line names DIR). */
    private boolean isNode(long pid) {
        try {
            String cmdline = Files.readString(Paths.get("/proc", Long.toString(pid), "cmdline"), StandardCharsets.UTF_8);
            return cmdline.contains(dir.toString() + "/node");
        } catch (IOException e) {
            return false;
        }
    }

    /** SIGKILLs node {@code node} and waits until it is gone. */
    void kill(int node) throws Exception {
        long pid = pid(node);
        if (!isNode(pid)) {
            throw new IllegalStateException("pid " + pid + " of node " + node + " is not a node of " + dir);
        }
        ProcessHandle h = ProcessHandle.of(pid).orElseThrow();
        h.destroyForcibly();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        // A zombie has an empty command line, so this also ends once the node is a zombie.
        while (isNode(pid)) {
            if (System.nanoTime() > deadline) {
                throw new IllegalStateException("node " + node + " (pid " + pid + ") still alive 10 s after SIGKILL");
            }
            Thread.sleep(20);
        }
    }

    /**
     * Starts node {@code node} again, as {@code cluster up} starts a node (its properties
     * file, stdin from /dev/null, stdout and stderr appended to its server.log), after it
     * was killed; its new pid replaces the old one in DIR/pids, so that {@link #close}
     * (and {@code cluster down}) stop it too. Returns once its log shows it listening for
     * clients again.
     */
    void restart(int node) throws Exception {
        long old = pid(node);
        if (isNode(old)) {
            throw new IllegalStateException("node " + node + " (pid " + old + ") is still running");
        }
        Path nodeDir = dir.resolve("node" + node);
        Path log = nodeDir.resolve("server.log");
        long logStart = Files.size(log);
        Process p = new ProcessBuilder(SamsaBroker.serverBinary().toString(), "-c",
                nodeDir.resolve("server.properties").toString())
                .redirectInput(ProcessBuilder.Redirect.from(Path.of("/dev/null").toFile()))
                .redirectErrorStream(true)
                .redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile()))
                .start();
        List<String> pids = new ArrayList<>(Files.readAllLines(dir.resolve("pids")));
        pids.set(node - 1, Long.toString(p.pid()));
        Files.writeString(dir.resolve("pids"), String.join("\n", pids) + "\n");
        String want = "samsa-server listening on port " + (basePort + 10 * (node - 1)) + " ";
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(UP_TIMEOUT_MS);
        while (true) {
            byte[] all = Files.readAllBytes(log);
            int from = (int) Math.min(logStart, all.length);
            String since = new String(all, from, all.length - from, StandardCharsets.UTF_8);
            if (since.contains(want)) {
                return;
            }
            if (!p.isAlive()) {
                throw new IllegalStateException("node " + node + " exited (" + p.exitValue() + ") on restart:\n"
                        + logTail(node, 30));
            }
            if (System.nanoTime() > deadline) {
                throw new IllegalStateException("node " + node + " not listening " + UP_TIMEOUT_MS
                        + " ms after its restart:\n" + logTail(node, 30));
            }
            Thread.sleep(50);
        }
    }

    /** The last {@code lines} lines of node {@code node}'s log. */
    String logTail(int node, int lines) {
        try {
            List<String> all = Files.readAllLines(dir.resolve("node" + node).resolve("server.log"), StandardCharsets.UTF_8);
            return String.join("\n", all.subList(Math.max(0, all.size() - lines), all.size()));
        } catch (IOException | RuntimeException e) {
            return "(no log: " + e + ")";
        }
    }

    /** SIGKILLs every node DIR/pids lists that is still running. */
    private void stopNodes() {
        List<String> lines;
        try {
            lines = Files.readAllLines(dir.resolve("pids"));
        } catch (IOException e) {
            return; // no nodes started
        }
        for (String l : lines) {
            try {
                long pid = Long.parseLong(l.trim());
                if (isNode(pid)) {
                    ProcessHandle.of(pid).ifPresent(ProcessHandle::destroyForcibly);
                }
            } catch (NumberFormatException e) {
                // a partly written line
            }
        }
    }

    private static void removeTree(Path d) {
        try (Stream<Path> walk = Files.walk(d)) {
            walk.sorted(Comparator.reverseOrder()).forEach(q -> q.toFile().delete());
        } catch (IOException e) {
            // already gone
        }
    }

    /** {@code cluster down --purge}, then SIGKILL for any node it left, then the dir goes. */
    @Override
    public synchronized void close() {
        if (Files.exists(dir.resolve("cluster"))) {
            try {
                String out = cli(DOWN_TIMEOUT_MS, "down", "--dir", dir.toString(), "--purge");
                if (!out.contains("Removed ")) {
                    System.err.println("samsa cluster down --purge " + dir + ":\n" + out);
                }
            } catch (Exception e) {
                System.err.println("samsa cluster down " + dir + ": " + e);
            }
        }
        stopNodes();
        synchronized (LIVE) {
            LIVE.remove(this);
        }
        removeTree(tempDir);
    }
}
