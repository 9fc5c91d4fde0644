<?php
// A php-gearman (GearmanWorker) worker for the compat tests.
// usage: php php_worker.php HOST PORT PREFIX
// Registers PREFIX_rev, PREFIX_slowrev, PREFIX_status, PREFIX_fail,
// PREFIX_exc and PREFIX_data, then works until killed.
[$_, $host, $port, $prefix] = $argv;

$worker = new GearmanWorker();
$worker->addServer($host, (int)$port);

$worker->addFunction("{$prefix}_rev", function (GearmanJob $job) {
    return strrev($job->workload());
});

// Sleeps first, so that submissions arriving meanwhile can coalesce.
$worker->addFunction("{$prefix}_slowrev", function (GearmanJob $job) {
    usleep(700000);
    return strrev($job->workload());
});

// Reports 1/2, then waits (at most 20 s) until the file named by the
// workload exists, reports 2/2 and completes.
$worker->addFunction("{$prefix}_status", function (GearmanJob $job) {
    $release = $job->workload();
    $job->sendStatus(1, 2);
    $deadline = microtime(true) + 20;
    while (!file_exists($release) && microtime(true) < $deadline) {
        usleep(20000);
    }
    $job->sendStatus(2, 2);
    return "released";
});

$worker->addFunction("{$prefix}_fail", function (GearmanJob $job) {
    $job->setReturn(GEARMAN_WORK_FAIL);
    return "";
});

$worker->addFunction("{$prefix}_exc", function (GearmanJob $job) {
    $job->sendException("boom: " . $job->workload());
    $job->setReturn(GEARMAN_WORK_EXCEPTION);
    return "";
});

// Intermediate data and a warning before the result.
$worker->addFunction("{$prefix}_data", function (GearmanJob $job) {
    $job->sendData("part1,");
    $job->sendWarning("careful");
    $job->sendData("part2,");
    return "end";
});

fwrite(STDERR, "php worker ready\n");
while (true) {
    if (!$worker->work() && $worker->returnCode() != GEARMAN_SUCCESS) {
        fwrite(STDERR, "work() failed: " . $worker->error() . "\n");
        usleep(100000);
    }
}
