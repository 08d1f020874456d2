export { stackUp, stackDown, stackStatus, stackLogs, type ServiceStatus } from './stack';
export { LOCAL_CLICKHOUSE_USER, LOCAL_CLICKHOUSE_PASSWORD, kafkaExtraPropertiesFile, runKafkaTool } from './services';
