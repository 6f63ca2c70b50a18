package samsa.it;

import java.util.Map;

import org.junit.jupiter.api.BeforeAll;

/**
 * TransactionsTest with the broker advertising transaction.version 1 (Kafka's level on a
 * cluster not upgraded to it): the client adds partitions and offsets itself
 * (AddPartitionsToTxn, AddOffsetsToTxn), ends with EndTxn v4 and keeps its epoch.
 */
class TransactionsV1Test extends TransactionsTest {
    @BeforeAll
    static void start() throws Exception {
        startBroker(Map.of("samsa.transaction.version", "1"));
    }

    @Override
    int transactionVersion() {
        return 1;
    }
}
