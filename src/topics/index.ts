export {
  loadTopicDeclarations,
  parseTopicFamily,
  topicFamilySchema,
  TOPIC_NAME,
  type TopicSpec,
  type TopicFamilyInput,
} from './declarations';
export {
  planTopics,
  applyPlan,
  formatPlan,
  type TopicPlan,
  type TopicAction,
  type TopicDrift,
  type ConfigChange,
} from './plan';
export { TopicDeclarationError, TopicDriftError } from './errors';
