package samsa.it;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * One real samsa-server process on a free loopback port with a fresh temporary data dir,
 * started as tests/integration/python/conftest.py does: the repository's
 * config/server.properties with log.dirs and (advertised.)listeners overridden. Port 0 lets
 * the server pick a free port, which it reports on stdout ("samsa-server listening on port
 * N"); its stderr (the log) goes to a file whose tail {@link #stderrTail} shows.
 *
 * <p>{@link #crash} kills the process with SIGKILL and keeps its data dir; {@link #restart}
 * then starts it again on the same port with the same data dir, as after a power cut.
 *
 * <p>{@link #close} kills the process (SIGKILL) and removes the temp dir. Should the test JVM
 * itself die, the server gets SIGKILL too: it is started under {@code setpriv --pdeathsig
 * KILL} from one long-lived thread (the parent-death signal follows the thread that
 * forked); a shutdown hook closes whatever is still open, and dirs left by a JVM that was
 * killed are removed by the next run.
 */
final class SamsaBroker implements AutoCloseable {
    private static final long START_TIMEOUT_MS = 20_000;
    private static final Pattern LISTENING = Pattern.compile("samsa-server listening on port (\\d+)\\D");
    private static final List<SamsaBroker> LIVE = new ArrayList<>();
    private static final ExecutorService SPAWNER = Executors.newSingleThreadExecutor(r -> {
        Thread t = new Thread(r, "samsa-server-spawner");
        t.setDaemon(true);
        return t;
    });

    static {
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            List<SamsaBroker> left;
            synchronized (LIVE) {
                left = new ArrayList<>(LIVE);
            }
            for (SamsaBroker b : left) {
                b.close();
            }
        }, "samsa-server-reaper"));
        removeOrphanedDirs();
    }

    /**
     * A test JVM killed with SIGKILL leaves its temp dirs behind (its servers die with it).
     * Each dir names its JVM in an "owner" file; dirs of JVMs no longer alive are removed.
     */
    private static void removeOrphanedDirs() {
        Path tmp = Paths.get(System.getProperty("java.io.tmpdir"));
        try (Stream<Path> dirs = Files.list(tmp)) {
            dirs.filter(d -> d.getFileName().toString().startsWith("samsa-java-")).forEach(d -> {
                try {
                    long pid = Long.parseLong(Files.readString(d.resolve("owner")).trim());
                    if (ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false)) {
                        return;
                    }
                    removeTree(d);
                } catch (IOException | RuntimeException e) {
                    // not one of ours, or not readable: leave it
                }
            });
        } catch (IOException e) {
            System.err.println("cannot list " + tmp + ": " + e);
        }
    }

    private static void removeTree(Path dir) {
        try (Stream<Path> walk = Files.walk(dir)) {
            walk.sorted(Comparator.reverseOrder()).forEach(q -> q.toFile().delete());
        } catch (IOException e) {
            System.err.println("cannot remove " + dir + ": " + e);
        }
    }

    private final Path tempDir;
    private final Path dataDir;
    private final Path stdoutFile;
    private final Path stderrFile;
    private Map<String, String> overrides = Map.of();
    private Process process;
    private int port;

    private SamsaBroker(Path tempDir) {
        this.tempDir = tempDir;
        this.dataDir = tempDir.resolve("data");
        this.stdoutFile = tempDir.resolve("server.stdout");
        this.stderrFile = tempDir.resolve("server.stderr");
    }

    /** Starts a broker with the given extra --override settings and waits until it listens. */
    static SamsaBroker start(Map<String, String> overrides) throws Exception {
        SamsaBroker b = new SamsaBroker(Files.createTempDirectory("samsa-java-"));
        synchronized (LIVE) {
            LIVE.add(b);
        }
        try {
            Files.writeString(b.tempDir.resolve("owner"), ProcessHandle.current().pid() + "\n");
            Files.createDirectories(b.dataDir);
            b.overrides = Map.copyOf(overrides);
            b.launch(0);
            return b;
        } catch (Throwable t) {
            String tail = b.stderrTail(40);
            b.close();
            throw new IllegalStateException(t.getMessage() + "\n---- samsa-server stderr tail ----\n" + tail, t);
        }
    }

    static SamsaBroker start() throws Exception {
        return start(Map.of());
    }

    static Path serverBinary() {
        String s = System.getProperty("samsa.server", "");
        if (s.isEmpty()) {
            s = System.getenv().getOrDefault("SAMSA_SERVER", "");
        }
        if (s.isEmpty()) {
            throw new IllegalStateException("set SAMSA_SERVER (or -Dsamsa.server) to the samsa-server binary");
        }
        Path p = Paths.get(s);
        if (!Files.isExecutable(p)) {
            throw new IllegalStateException("samsa-server binary " + p + " is not an executable file");
        }
        return p;
    }

    static Path configFile() {
        Path repo = Paths.get(System.getProperty("samsa.repo", "../../.."));
        Path p = repo.resolve("config").resolve("server.properties").normalize().toAbsolutePath();
        if (!Files.isRegularFile(p)) {
            throw new IllegalStateException("server config " + p + " not found (set -Dsamsa.repo)");
        }
        return p;
    }

    /** Starts the process on {@code listenPort} (0: a free port the server picks and
     *  reports) and waits until it listens. Its stderr is appended to, so that the log of
     *  a restarted server follows the log of the one before. */
    private void launch(int listenPort) throws Exception {
        List<String> cmd = new ArrayList<>();
        if (Files.isExecutable(Paths.get("/usr/bin/setpriv"))) {
            cmd.addAll(List.of("/usr/bin/setpriv", "--pdeathsig", "KILL", "--"));
        }
        cmd.addAll(List.of(serverBinary().toString(), "-c", configFile().toString(),
                "--override", "log.dirs=" + dataDir,
                "--override", "listeners=PLAINTEXT://127.0.0.1:" + listenPort,
                "--override", "advertised.listeners=PLAINTEXT://127.0.0.1:" + listenPort));
        for (Map.Entry<String, String> e : overrides.entrySet()) {
            cmd.add("--override");
            cmd.add(e.getKey() + "=" + e.getValue());
        }
        Files.writeString(stderrFile, "==== " + String.join(" ", cmd) + "\n",
                StandardOpenOption.CREATE, StandardOpenOption.APPEND);
        ProcessBuilder pb = new ProcessBuilder(cmd)
                .redirectInput(ProcessBuilder.Redirect.from(Path.of("/dev/null").toFile()))
                .redirectOutput(stdoutFile.toFile())
                .redirectError(ProcessBuilder.Redirect.appendTo(stderrFile.toFile()));
        try {
            process = SPAWNER.submit(pb::start).get();
        } catch (ExecutionException e) {
            throw new IOException("cannot start " + cmd.get(0) + ": " + e.getCause(), e.getCause());
        }
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(START_TIMEOUT_MS);
        while (true) {
            String out = Files.readString(stdoutFile, StandardCharsets.UTF_8);
            Matcher m = LISTENING.matcher(out);
            if (m.find()) {
                port = Integer.parseInt(m.group(1));
                return;
            }
            if (!process.isAlive()) {
                throw new IllegalStateException("samsa-server exited (rc=" + process.exitValue() + ") before listening");
            }
            if (System.nanoTime() > deadline) {
                throw new IllegalStateException("samsa-server did not report its port within " + START_TIMEOUT_MS + " ms");
            }
            Thread.sleep(20);
        }
    }

    String bootstrap() {
        return "127.0.0.1:" + port;
    }

    int port() {
        return port;
    }

    Path dataDir() {
        return dataDir;
    }

    boolean isRunning() {
        return process != null && process.isAlive();
    }

    /** The last {@code lines} lines of the server's log. */
    String stderrTail(int lines) {
        try {
            List<String> all = Files.readAllLines(stderrFile, StandardCharsets.UTF_8);
            return String.join("\n", all.subList(Math.max(0, all.size() - lines), all.size()));
        } catch (IOException | RuntimeException e) {
            return "(no stderr: " + e + ")";
        }
    }

    private synchronized void kill() {
        Process p = process;
        if (p == null) {
            return;
        }
        p.destroyForcibly();
        try {
            p.waitFor(10, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /** SIGKILL, as a crash: nothing of the server's shutdown runs. The data dir stays. */
    synchronized void crash() {
        Process p = process;
        kill();
        if (p != null && p.isAlive()) {
            throw new IllegalStateException("samsa-server (pid " + p.pid() + ") still alive 10 s after SIGKILL");
        }
        process = null;
    }

    /**
     * Starts the server again after {@link #crash}, on the same port (clients keep their
     * bootstrap address and metadata) and with the same data dir, and waits until it
     * listens. The port is free again at once: the server binds with SO_REUSEADDR.
     */
    synchronized void restart() throws Exception {
        if (isRunning()) {
            throw new IllegalStateException("samsa-server on port " + port + " is still running");
        }
        try {
            launch(port);
        } catch (Exception e) {
            throw new IllegalStateException("restart on port " + port + ": " + e.getMessage()
                    + "\n---- samsa-server stderr tail ----\n" + stderrTail(40), e);
        }
    }

    @Override
    public synchronized void close() {
        kill();
        synchronized (LIVE) {
            LIVE.remove(this);
        }
        // For a look after the run: SAMSA_KEEP_LOGS=DIR keeps each server's log there.
        String keep = System.getenv("SAMSA_KEEP_LOGS");
        if (keep != null && !keep.isEmpty()) {
            try {
                Files.createDirectories(Paths.get(keep));
                Files.copy(stderrFile, Paths.get(keep, tempDir.getFileName() + ".stderr"));
            } catch (IOException e) {
                System.err.println("cannot keep " + stderrFile + ": " + e);
            }
        }
        removeTree(tempDir);
    }
}
